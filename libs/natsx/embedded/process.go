package embedded

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
)

// Environment of a server process started by StartProcess.
const (
	envProcessDir  = "SB_EMBEDDED_NATS_PROCESS_DIR"
	envProcessLazy = "SB_EMBEDDED_NATS_PROCESS_LAZY_FSYNC"
)

// StartProcess runs a JetStream server in a process of its own: this binary
// again, which must call RunProcessIfChild first thing in main. Benchmarks use
// it so that the server's work and memory stay out of the measured process,
// as in production, where NATS runs beside the services. Only StoreDir,
// LazyFsync, ProcessEnv and ProcessStderr of o are used; the port is random. It returns the server's client
// URL and a function that stops the process and waits for it.
func StartProcess(o Options) (url string, stop func(), err error) {
	if o.StoreDir == "" {
		return "", nil, fmt.Errorf("embedded: process: StoreDir is required")
	}
	exe, err := os.Executable()
	if err != nil {
		return "", nil, fmt.Errorf("embedded: process: %w", err)
	}
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), o.ProcessEnv...)
	cmd.Env = append(cmd.Env, envProcessDir+"="+o.StoreDir, fmt.Sprintf("%s=%t", envProcessLazy, o.LazyFsync))
	cmd.Stderr = os.Stderr
	if o.ProcessStderr != nil {
		cmd.Stderr = o.ProcessStderr
	}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return "", nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return "", nil, err
	}
	if err := cmd.Start(); err != nil {
		return "", nil, fmt.Errorf("embedded: process: %w", err)
	}
	stop = func() {
		_ = stdin.Close()
		_ = cmd.Wait()
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		stop()
		return "", nil, fmt.Errorf("embedded: process gave no client URL (does main call RunProcessIfChild?): %w", err)
	}
	return strings.TrimSpace(line), stop, nil
}

// RunProcessIfChild returns at once in a process not started by
// StartProcess. In one that was, it runs the server, prints its client URL,
// serves until stdin closes (the parent stopped it or exited) and exits.
func RunProcessIfChild() {
	dir := os.Getenv(envProcessDir)
	if dir == "" {
		return
	}
	srv, err := Start(Options{StoreDir: dir, LazyFsync: os.Getenv(envProcessLazy) == "true"})
	if err != nil {
		fmt.Fprintln(os.Stderr, "embedded nats process:", err)
		os.Exit(1)
	}
	fmt.Println(srv.ClientURL())
	_, _ = io.Copy(io.Discard, os.Stdin)
	srv.Shutdown()
	os.Exit(0)
}
