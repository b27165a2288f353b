package result

// forwarderNode returns the forwarding node's CPU figures for a run, and false when the run has
// no usable forwarder record (none, or one with Error set or its node not measured).
//
// TODO(lead, when merging the meter branch): the meter developer adds
// NodeOver(series []NodeSample, startNs, endNs int64, numCPU int) (Node, error) in
// nodeseries.go and records get WindowStartUnixNano/WindowEndUnixNano and NodeSeries. Then,
// when len(r.Forwarder.NodeSeries) > 0, return
// NodeOver(r.Forwarder.NodeSeries, r.Client.WindowStartUnixNano, r.Client.WindowEndUnixNano,
// r.Forwarder.Node.NumCPU) (false on error), so the forwarding node is measured over exactly the
// client's window; the whole-record Node below stays the fallback for records without a series.
func forwarderNode(r Run) (Node, bool) {
	f := r.Forwarder
	if f == nil || f.Error != "" || !f.Measured(PartNode) || !(clean(f.Node.BusyCores) > 0) {
		return Node{}, false
	}
	return f.Node, true
}
