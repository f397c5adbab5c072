// Command devstack runs the whole of signalbridge in one process for a laptop or a demo:
// embedded NATS with JetStream, an in-memory cache (or Redis with REDIS_URL), the demo portal
// and every service. Ctrl-C stops everything in order.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/signalbridge/signalbridge/libs/telemetry"
	"github.com/signalbridge/signalbridge/services/devstack"
	"github.com/signalbridge/signalbridge/services/ingest"
	webhookrx "github.com/signalbridge/signalbridge/services/webhook-receiver"
)

type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "devstack:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) (err error) {
	fs := flag.NewFlagSet("devstack", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var services, portalFiles multiFlag
	dataDir := fs.String("data", ".data", "folder for JetStream data")
	natsPort := fs.Int("nats-port", 4222, "embedded NATS port (0: random)")
	httpAddr := fs.String("http-addr", "127.0.0.1:8080", "ingest HTTP address")
	grpcAddr := fs.String("grpc-addr", "127.0.0.1:9000", "ingest gRPC address")
	adminAddr := fs.String("admin-addr", "127.0.0.1:9090", "ingest /metrics and health address")
	webhookAddr := fs.String("webhook-addr", "127.0.0.1:8090", "webhook-receiver address")
	webhookAdminAddr := fs.String("webhook-admin-addr", "127.0.0.1:9091", "webhook-receiver /metrics and health address")
	lazy := fs.Bool("lazy-fsync", false, "acknowledge before fsync (faster; loses acknowledged data on an OS crash)")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	fs.Var(&services, "service", "service to run (repeatable; default all: "+strings.Join(devstack.Services, ", ")+")")
	fs.Var(&portalFiles, "portal", "extra portal YAML file to load (repeatable)")
	if err := fs.Parse(args); err != nil {
		return err
	}

	tel, err := telemetry.Setup(ctx, telemetry.Config{ServiceName: "devstack", ServiceVersion: ingest.Version,
		OTLPEndpoint: getenv("SB_OTEL_ENDPOINT"), LogLevel: *logLevel, LogFormat: "text"}, stderr)
	if err != nil {
		return err
	}
	defer func() {
		c, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		err = errors.Join(err, tel.Shutdown(c))
	}()

	var docs [][]byte
	for _, f := range portalFiles {
		b, err := os.ReadFile(f)
		if err != nil {
			return fmt.Errorf("--portal: %w", err)
		}
		docs = append(docs, b)
	}
	// A laptop often runs its own NATS on 4222 (or something on 8080): take a free port then.
	*natsPort = freePort(tel.Logger, "NATS", *natsPort)
	*httpAddr = freeAddr(tel.Logger, "ingest HTTP", *httpAddr)
	*grpcAddr = freeAddr(tel.Logger, "ingest gRPC", *grpcAddr)
	*adminAddr = freeAddr(tel.Logger, "ingest admin", *adminAddr)
	*webhookAddr = freeAddr(tel.Logger, "webhook-receiver", *webhookAddr)
	*webhookAdminAddr = freeAddr(tel.Logger, "webhook-receiver admin", *webhookAdminAddr)
	ingestCfg := ingest.Config{
		HTTPAddr: *httpAddr, GRPCAddr: *grpcAddr, AdminAddr: *adminAddr, NATSEndpoint: true,
		MaxBodyBytes: 8 << 20, MaxFutureSkew: 5 * time.Minute, MaxAge: 365 * 24 * time.Hour,
		StreamWindow: 4, ShutdownTimeout: 10 * time.Second,
	}
	st, err := devstack.Start(ctx, devstack.Config{
		DataDir: *dataDir, NATSHost: "127.0.0.1", NATSPort: *natsPort, LazyFsync: *lazy,
		RedisURL: getenv("REDIS_URL"), Secrets: getenv, Services: services,
		Webhook: webhookrx.Config{HTTPAddr: *webhookAddr, AdminAddr: *webhookAdminAddr}, PortalFiles: docs, Ingest: ingestCfg,
		Logger: tel.Logger, Meter: tel.MeterProvider, Tracer: tel.TracerProvider, Metrics: tel.MetricsHandler(),
	})
	if err != nil {
		return err
	}
	defer st.Close()
	printBanner(stdout, st)
	err = st.Run(ctx)
	tel.Logger.Info("devstack stopped")
	return err
}

// freeAddr returns addr if it can be bound, else the same host with a random port.
func freeAddr(log *slog.Logger, what, addr string) string {
	lis, err := net.Listen("tcp", addr)
	if err == nil {
		lis.Close()
		return addr
	}
	host, _, _ := net.SplitHostPort(addr)
	log.Warn(what+" address is taken; using a random port", "addr", addr, "err", err)
	return net.JoinHostPort(host, "0")
}

func freePort(log *slog.Logger, what string, port int) int {
	if port == 0 {
		return 0
	}
	if freeAddr(log, what, net.JoinHostPort("127.0.0.1", strconv.Itoa(port))) == net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) {
		return port
	}
	return 0
}

func printBanner(w io.Writer, st *devstack.Stack) {
	cache := st.RedisURL
	if st.InMemoryCache() {
		cache += " (in-memory; set REDIS_URL for a real Redis)"
	}
	nurl := st.NATS.ClientURL()
	fmt.Fprintf(w, "\nsignalbridge devstack is up\n")
	row := func(name, format string, args ...any) {
		fmt.Fprintf(w, "  %-18s %s\n", name, fmt.Sprintf(format, args...))
	}
	row("NATS (JetStream)", "%s", nurl)
	row("cache", "%s", cache)
	row("demo portal", "%d   ingest API key: %s", devstack.DemoPortalID, devstack.DemoAPIKey)
	if st.Sandbox != nil {
		row("HubSpot sandbox", "%s   token: %s (demo data; set HUBSPOT_TOKEN_DEMO for real HubSpot)", st.HubSpotURL, st.SandboxToken())
	} else {
		row("HubSpot", "%s (token from HUBSPOT_TOKEN_DEMO)", st.HubSpotURL)
	}
	if in := st.Ingest; in != nil {
		row("ingest HTTP", "http://%s/v1/portals/%d/signals", in.HTTPAddr(), devstack.DemoPortalID)
		row("ingest gRPC", "%s   (reflection on)", in.GRPCAddr())
		row("ingest admin", "http://%s/metrics", in.AdminAddr())
	}
	if url := st.WebhookURL(); url != "" {
		row("webhook-receiver", "%s", url)
		row("webhook admin", "http://%s/metrics", st.Webhook.AdminAddr())
	}
	if in := st.Ingest; in != nil {
		fmt.Fprintf(w, `
Send a signal, then watch it land:
  curl -sS -X POST http://%[1]s/v1/portals/%[2]d/signals \
    -H 'Authorization: Bearer %[3]s' -H 'Content-Type: application/json' \
    -d '{"signals":[{"id":"demo-1","type":"pricing_page_visit","account":{"domain":"https://www.Dropbox.com/pricing"},"visitor":{"email":"Ann@Dropbox.com"},"strength":"high"}]}'
  nats --server %[4]s stream view SIGNALS
`, in.HTTPAddr(), devstack.DemoPortalID, devstack.DemoAPIKey, nurl)
	}
	if st.Sandbox != nil {
		fmt.Fprintf(w, `
Browse the sandbox's demo CRM:
  curl -sS '%[1]s/crm/v3/objects/companies?limit=3&properties=domain,name' -H 'Authorization: Bearer %[2]s'
`, st.HubSpotURL, st.SandboxToken())
		if st.Webhook != nil {
			fmt.Fprintf(w, `
Create a contact in the sandbox; its signed webhook reaches webhook-receiver and lands on HUBSPOT:
  curl -sS -X POST '%[1]s/crm/v3/objects/contacts' -H 'Authorization: Bearer %[2]s' \
    -H 'Content-Type: application/json' -d '{"properties":{"email":"new.person@example.com","firstname":"New"}}'
  nats --server %[3]s stream view HUBSPOT
`, st.HubSpotURL, st.SandboxToken(), nurl)
		}
	}
	fmt.Fprintln(w, "\nCtrl-C stops everything.")
}
