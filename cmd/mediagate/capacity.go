package main

import "github.com/mediagate/mediagate/api"

// capacities are the limits /readyz reports with 429 while one is reached
// (api.WithCapacity): "calls", the SIP calls against sip.guard.max_calls,
// which refuses the next call with 503 and Retry-After by itself; and
// "participants", everyone in this node's rooms against
// node.max_participants, which only steers load balancers. 0 is no limit.
func (n *node) capacities() []api.Option {
	return []api.Option{
		api.WithCapacity("calls", func() (int, int) { return n.sip.CallCapacity() }),
		api.WithCapacity("participants", func() (int, int) {
			used := 0
			for _, r := range n.rooms.List() {
				used += r.Len()
			}
			return used, n.config().Node.MaxParticipants
		}),
	}
}
