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

	"github.com/signalbridge/signalbridge/libs/service"
	"github.com/signalbridge/signalbridge/libs/telemetry"
	"github.com/signalbridge/signalbridge/services/devstack"
	"github.com/signalbridge/signalbridge/services/ingest"
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
	matcherGRPCAddr := fs.String("matcher-grpc-addr", "127.0.0.1:9001", "matcher gRPC MappingService address")
	matcherAdminAddr := fs.String("matcher-admin-addr", "127.0.0.1:9092", "matcher /metrics, health and /status address")
	scoreSyncGRPCAddr := fs.String("score-sync-grpc-addr", "127.0.0.1:9002", "score-sync gRPC ScoreSyncService address")
	scoreSyncAdminAddr := fs.String("score-sync-admin-addr", "127.0.0.1:9093", "score-sync /metrics and health address")
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
	*matcherGRPCAddr = freeAddr(tel.Logger, "matcher gRPC", *matcherGRPCAddr)
	*matcherAdminAddr = freeAddr(tel.Logger, "matcher admin", *matcherAdminAddr)
	*scoreSyncGRPCAddr = freeAddr(tel.Logger, "score-sync gRPC", *scoreSyncGRPCAddr)
	*scoreSyncAdminAddr = freeAddr(tel.Logger, "score-sync admin", *scoreSyncAdminAddr)

	cfg, err := devstack.DefaultConfig()
	if err != nil {
		return err
	}
	cfg.DataDir, cfg.NATSPort, cfg.LazyFsync, cfg.Services, cfg.PortalFiles = *dataDir, *natsPort, *lazy, services, docs
	cfg.RedisURL = getenv("REDIS_URL")
	secrets := service.NewSecrets(getenv, os.ReadFile, time.Now)
	cfg.Secrets = func(name string) string { v, _ := secrets.Lookup(name); return v }
	cfg.Ingest.HTTPAddr, cfg.Ingest.GRPCAddr, cfg.Ingest.AdminAddr = *httpAddr, *grpcAddr, *adminAddr
	cfg.Ingest.ShutdownTimeout = 10 * time.Second
	cfg.Webhook.HTTPAddr, cfg.Webhook.AdminAddr = *webhookAddr, *webhookAdminAddr
	cfg.Matcher.GRPCAddr, cfg.Matcher.AdminAddr = *matcherGRPCAddr, *matcherAdminAddr
	cfg.ScoreSync.GRPCAddr, cfg.ScoreSync.AdminAddr = *scoreSyncGRPCAddr, *scoreSyncAdminAddr
	cfg.Logger, cfg.Meter, cfg.Tracer, cfg.Metrics = tel.Logger, tel.MeterProvider, tel.TracerProvider, tel.MetricsHandler()
	st, err := devstack.Start(ctx, cfg)
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
	if m := st.Matcher; m != nil {
		row("matcher gRPC", "%s   MappingService (reflection on)", m.GRPCAddr())
		row("matcher admin", "http://%s/status   (/metrics, /v1/portals/%d/mirror)", m.AdminAddr(), devstack.DemoPortalID)
	}
	if ss := st.ScoreSync; ss != nil {
		row("score-sync gRPC", "%s   ScoreSyncService (reflection on)", ss.GRPCAddr())
		row("score-sync admin", "http://%s/metrics", ss.AdminAddr())
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
	printHubSpotExamples(w, st)
	fmt.Fprintln(w, "\nCtrl-C stops everything.")
}

// printHubSpotExamples shows how to reach matcher and score-sync, with a demo company's domain.
func printHubSpotExamples(w io.Writer, st *devstack.Stack) {
	_, domain := st.DemoCompany()
	if domain == "" {
		domain = "example.com"
	}
	if m := st.Matcher; m != nil {
		fmt.Fprintf(w, `
Resolve a domain to its HubSpot company (matcher; signals sent to ingest land matched on SIGNALS):
  grpcurl -plaintext -d '{"portal_id":"%[2]d","account":{"domain":"%[3]s"}}' \
    %[1]s signalbridge.mapping.v1.MappingService/ResolveAccount
`, m.GRPCAddr(), devstack.DemoPortalID, domain)
	}
	if ss := st.ScoreSync; ss != nil {
		if in := st.Ingest; in != nil {
			fmt.Fprintf(w, `
Send a score, then push the portal's scores to HubSpot now (score-sync) and look at the run:
  curl -sS -X POST http://%[1]s/v1/portals/%[2]d/scores \
    -H 'Authorization: Bearer %[3]s' -H 'Content-Type: application/json' \
    -d '{"scores":[{"domain":"%[4]s","intent_score":87.5,"intent_strength":"very_high","intent_trend":"surging"}]}'
`, in.HTTPAddr(), devstack.DemoPortalID, devstack.DemoAPIKey, domain)
		} else {
			fmt.Fprintln(w, "\nPush the portal's scores to HubSpot now (score-sync) and look at the run:")
		}
		fmt.Fprintf(w, `  grpcurl -plaintext -d '{"portal_id":"%[2]d"}' %[1]s signalbridge.scoresync.v1.ScoreSyncService/TriggerSync
  grpcurl -plaintext -d '{"portal_id":"%[2]d"}' %[1]s signalbridge.scoresync.v1.ScoreSyncService/ListRuns
`, ss.GRPCAddr(), devstack.DemoPortalID)
	}
}
