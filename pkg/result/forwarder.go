package result

import "fmt"

// forwarderNode returns the forwarding node's CPU figures for a run, and false with the reason
// when the run has no usable forwarder record (none, one with Error set, its node not measured,
// or a series that does not cover the client's window). With a node series (tcpload sample
// --series-interval) the figures cover exactly the client's window; without one they are the
// sampler's own window.
func forwarderNode(r Run) (Node, bool, string) {
	f := r.Forwarder
	switch {
	case f == nil:
		return Node{}, false, ""
	case f.Error != "":
		return Node{}, false, "forwarding node's sampler failed: " + f.Error
	case !f.Measured(UnmeasuredNode):
		return Node{}, false, "forwarding node's CPU was not measured"
	}
	if len(f.NodeSeries) > 0 && r.Client != nil && r.Client.WindowStartUnixNano > 0 && r.Client.WindowEndUnixNano > 0 {
		n, err := NodeOver(f.NodeSeries, r.Client.WindowStartUnixNano, r.Client.WindowEndUnixNano, f.Node.NumCPU)
		if err != nil {
			return Node{}, false, fmt.Sprintf("forwarding node over the client's window: %v", err)
		}
		return n, true, ""
	}
	if !(clean(f.Node.BusyCores) > 0) {
		return Node{}, false, "forwarding node's CPU was not measured"
	}
	return f.Node, true, ""
}
