package result

// mkRun builds one server-push run from hand-made figures: client and server Mbps, process
// cores, and node busy cores for the client's and server's machine. Sidecar cores < 0 mean none.
type runSpec struct {
	repeat                   int
	clientMbps, serverMbps   float64
	clientCores, serverCores float64
	clientBusy, serverBusy   float64
	sidecarC, sidecarS       float64
	retrans                  uint64
	setup                    float64
	shared                   bool
}

func mkRun(scenario string, s runSpec) Run {
	c := &Record{Schema: Schema, Role: RoleClient, Direction: "server-push", Mbps: s.clientMbps,
		CPU: CPU{Cores: s.clientCores}, Node: Node{NumCPU: 2, BusyCores: s.clientBusy},
		Iface: Iface{RxMbps: s.clientMbps * 1.03, TxMbps: 1}, SetupSeconds: s.setup,
		TCP: TCP{Retransmits: 0, WindowRetransmits: new(uint64)}}
	sv := &Record{Schema: Schema, Role: RoleServer, Direction: "server-push", Sending: true, Mbps: s.serverMbps,
		CPU: CPU{Cores: s.serverCores}, Node: Node{NumCPU: 2, BusyCores: s.serverBusy},
		Iface: Iface{TxMbps: s.serverMbps * 1.03, RxMbps: 2}, SetupSeconds: s.setup / 2,
		TCP: TCP{Retransmits: s.retrans + 7, WindowRetransmits: &s.retrans}} // + 7: set-up and warm-up's
	if s.sidecarC >= 0 {
		c.Watched = map[string]CPU{WatchSidecar: {Cores: s.sidecarC}}
	}
	if s.sidecarS >= 0 {
		sv.Watched = map[string]CPU{WatchSidecar: {Cores: s.sidecarS}}
	}
	return Run{Scenario: scenario, Repeat: s.repeat, Client: c, Server: sv, SharedNode: s.shared}
}
