// demo.go: placeholder replaced below.

package main

import (
	"context"
	"io"
)

const demoClientsCmd = "demo-clients"

func runDemo(ctx context.Context, args []string, stdout, stderr io.Writer) error        { return nil }
func runDemoClients(ctx context.Context, args []string, stdout, stderr io.Writer) error { return nil }
