package bench

import (
	"bufio"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// tcpEstablished is the state column's value for an established socket in /proc/net/tcp.
const tcpEstablished = "01"

// queuedBytes sums the send and receive queues of the established sockets listed in r, a
// /proc/net/tcp or /proc/net/tcp6 table: tx_queue is what was sent and not yet acknowledged,
// rx_queue what arrived and was not yet read. At saturation the sum tells the pair's steady
// state apart: a few MB when the reader keeps up, hundreds when every queue is full.
func queuedBytes(r io.Reader) (int64, error) {
	sc := bufio.NewScanner(r)
	var sum int64
	line := 0
	for sc.Scan() {
		line++
		f := strings.Fields(sc.Text())
		if line == 1 || len(f) == 0 {
			continue // header
		}
		if len(f) < 5 {
			return 0, fmt.Errorf("line %d: %d fields, want at least 5", line, len(f))
		}
		if f[3] != tcpEstablished {
			continue
		}
		tx, rx, ok := strings.Cut(f[4], ":")
		if !ok {
			return 0, fmt.Errorf("line %d: queues %q, want tx:rx", line, f[4])
		}
		for _, h := range []string{tx, rx} {
			n, err := strconv.ParseInt(h, 16, 64)
			if err != nil || n < 0 {
				return 0, fmt.Errorf("line %d: queue %q: not a hexadecimal byte count", line, h)
			}
			sum += n
		}
	}
	if err := sc.Err(); err != nil {
		return 0, fmt.Errorf("read tcp table: %w", err)
	}
	return sum, nil
}
