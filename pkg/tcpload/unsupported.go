//go:build !linux

package tcpload

import (
	"context"
	"net/netip"

	"github.com/pathcost/pathcost/pkg/result"
)

// Server is a listening socket that serves one session; on this system it cannot be created.
type Server struct{}

// Listen returns ErrLinuxOnly: the engine needs Linux.
func Listen(addr string, cfg Config) (*Server, error) { return nil, ErrLinuxOnly }

// Addr is the bound address (none on this system).
func (s *Server) Addr() netip.AddrPort { return netip.AddrPort{} }

// Close does nothing on this system.
func (s *Server) Close() {}

// Serve returns a result holding ErrLinuxOnly.
func (s *Server) Serve(ctx context.Context) *Result {
	return &Result{Role: result.RoleServer, Err: ErrLinuxOnly}
}

// RunClient returns a result holding ErrLinuxOnly: the engine needs Linux.
func RunClient(ctx context.Context, addr string, cfg Config) *Result {
	return &Result{Role: result.RoleClient, Err: ErrLinuxOnly}
}
