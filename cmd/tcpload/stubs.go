package main

import (
	"context"
	"fmt"
)

func runLoopback(ctx context.Context, args []string) int { return 2 }
func runSample(ctx context.Context, args []string) int   { return 2 }
func runReport(ctx context.Context, args []string) int   { return 2 }
func runCompare(ctx context.Context, args []string) int  { return 2 }
func runCluster(args []string) int                       { fmt.Println("x"); return 2 }
