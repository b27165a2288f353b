package main

import "context"

func runReport(ctx context.Context, args []string) int  { return 2 }
func runCompare(ctx context.Context, args []string) int { return 2 }
