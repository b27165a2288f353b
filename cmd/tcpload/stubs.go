package main

import "context"

func runLoopback(ctx context.Context, args []string) int { return 2 }
func runSample(ctx context.Context, args []string) int   { return 2 }
func runReport(ctx context.Context, args []string) int   { return 2 }
func runCompare(ctx context.Context, args []string) int  { return 2 }
