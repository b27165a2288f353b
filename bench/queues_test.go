package bench

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestQueuedBytes(t *testing.T) {
	const header = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"
	tests := []struct {
		name    string
		table   string
		want    int64
		wantErr string
	}{
		{name: "empty table", table: header, want: 0},
		{name: "established sockets summed, listener skipped", table: header +
			"   0: 0100007F:C35C 00000000:0000 0A 00000000:00000010 00:00000000 00000000     0        0 1 1\n" +
			"   1: 0100007F:C35C 0100007F:B3A2 01 00100000:00000000 00:00000000 00000000     0        0 2 1\n" +
			"   2: 0100007F:B3A2 0100007F:C35C 01 00000000:0000FFFF 00:00000000 00000000     0        0 3 1\n",
			want: 0x100000 + 0xFFFF},
		{name: "tcp6 line", table: header +
			"   0: 0000000000000000FFFF00000100007F:C35C 0000000000000000FFFF00000100007F:8F2A 01 00000400:00000800 00:00000000 00000000 0 0 4 1\n",
			want: 0xC00},
		{name: "too few fields", table: header + "   0: 0100007F:C35C\n", wantErr: "line 2: 2 fields"},
		{name: "queues without colon", table: header + "   0: a b 01 00000400\n", wantErr: `queues "00000400"`},
		{name: "not hex", table: header + "   0: a b 01 0000zz00:00000000\n", wantErr: `queue "0000zz00"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := queuedBytes(strings.NewReader(tt.table))
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}
