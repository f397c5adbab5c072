package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"

	"github.com/signalbridge/signalbridge/libs/natsx/embedded"
)

// serveNATS is the child side of the NATS process: it runs a JetStream
// server on a random port, prints its client URL and serves until its stdin
// closes (the parent exited or is done).
func serveNATS(dir string, lazy bool) error {
	srv, err := embedded.Start(embedded.Options{StoreDir: dir, LazyFsync: lazy})
	if err != nil {
		return err
	}
	defer srv.Shutdown()
	fmt.Println(srv.ClientURL())
	_, _ = io.Copy(io.Discard, os.Stdin)
	return nil
}

// startNATSProcess runs the JetStream server in a process of its own (this
// binary again, with -serve-nats), as NATS runs beside the receiver in
// production, so that the server's work and garbage do not share the
// benchmark's heap and scheduler. It returns the client URL and a stop
// function that ends the process and waits for it.
func startNATSProcess(dir string, lazy bool) (string, func(), error) {
	exe, err := os.Executable()
	if err != nil {
		return "", nil, err
	}
	args := []string{"-serve-nats", dir}
	if lazy {
		args = append(args, "-lazy-fsync")
	}
	cmd := exec.Command(exe, args...)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return "", nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return "", nil, err
	}
	if err := cmd.Start(); err != nil {
		return "", nil, fmt.Errorf("nats process: %w", err)
	}
	stop := func() {
		_ = stdin.Close()
		_ = cmd.Wait()
	}
	url, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		stop()
		return "", nil, fmt.Errorf("nats process: no client URL: %w", err)
	}
	return strings.TrimSpace(url), stop, nil
}
