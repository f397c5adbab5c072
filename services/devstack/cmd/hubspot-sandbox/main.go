// Command hubspot-sandbox serves the HubSpot sandbox (libs/hubspot/hubspottest)
// on a real listener, for demos and benchmarks. It prints the base URL and
// every portal's id and token, then serves until interrupted.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/signalbridge/signalbridge/libs/hubspot/hubspottest"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		slog.Error("hubspot-sandbox stopped", "err", err)
		os.Exit(1)
	}
}

// config is the parsed command line.
type config struct {
	addr               string
	portals            int
	seedCompanies      int
	contactsPerCompany int
	dealsPerCompany    int
	tier               string
	burst              int
	fixtures           string
	searchLag          time.Duration
	noRateLimits       bool
}

func parseFlags(args []string) (config, error) {
	var c config
	fs := flag.NewFlagSet("hubspot-sandbox", flag.ContinueOnError)
	fs.StringVar(&c.addr, "addr", "127.0.0.1:8089", "listen address")
	fs.IntVar(&c.portals, "portals", 1, "number of portals to create")
	fs.IntVar(&c.seedCompanies, "seed-companies", 0, "generate this many companies (with contacts and deals) in every portal")
	fs.IntVar(&c.contactsPerCompany, "contacts-per-company", 3, "contacts generated per company")
	fs.IntVar(&c.dealsPerCompany, "deals-per-company", 1, "deals generated per company")
	fs.StringVar(&c.tier, "tier", hubspottest.TierFree, "rate-limit tier: free, starter, professional, enterprise or api_addon")
	fs.IntVar(&c.burst, "burst", 0, "override the ten-secondly request limit (scaled-up benchmarks)")
	fs.StringVar(&c.fixtures, "fixtures", "", "JSON fixtures file to load into every portal")
	fs.DurationVar(&c.searchLag, "search-lag", 0, "search index lag")
	fs.BoolVar(&c.noRateLimits, "no-rate-limits", false, "disable rate limiting")
	if err := fs.Parse(args); err != nil {
		return c, fmt.Errorf("parse flags: %w", err)
	}
	if c.portals < 1 {
		return c, fmt.Errorf("-portals must be at least 1, got %d", c.portals)
	}
	return c, nil
}

func run(ctx context.Context, args []string, out io.Writer) error {
	cfg, err := parseFlags(args)
	if err != nil {
		return err
	}
	var fixtures *hubspottest.Fixtures
	if cfg.fixtures != "" {
		f, err := os.Open(cfg.fixtures)
		if err != nil {
			return fmt.Errorf("open fixtures: %w", err)
		}
		fx, err := hubspottest.LoadFixtures(f)
		_ = f.Close()
		if err != nil {
			return fmt.Errorf("%s: %w", cfg.fixtures, err)
		}
		fixtures = &fx
	}

	srv := hubspottest.NewUnstarted(hubspottest.Options{
		SearchIndexLag:    cfg.searchLag,
		DisableRateLimits: cfg.noRateLimits,
		Logger:            slog.New(slog.NewTextHandler(os.Stderr, nil)),
	})
	defer srv.Close()

	ln, err := net.Listen("tcp", cfg.addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.addr, err)
	}
	fmt.Fprintf(out, "HubSpot sandbox listening on http://%s\n", ln.Addr())
	for i := range cfg.portals {
		p, err := srv.CreatePortal(hubspottest.PortalOptions{Tier: cfg.tier, Burst: cfg.burst})
		if err != nil {
			_ = ln.Close()
			return fmt.Errorf("create portal %d: %w", i+1, err)
		}
		if fixtures != nil {
			if _, err := p.ApplyFixtures(*fixtures); err != nil {
				_ = ln.Close()
				return fmt.Errorf("portal %d: %w", p.ID(), err)
			}
		}
		if cfg.seedCompanies > 0 {
			p.Generate(hubspottest.GenerateOptions{
				Companies: cfg.seedCompanies, ContactsPerCompany: cfg.contactsPerCompany, DealsPerCompany: cfg.dealsPerCompany,
				AliasRate: 0.2, DuplicateDomainRate: 0.05, WebsiteOnlyRate: 0.05, Seed: p.ID(),
			})
		}
		fmt.Fprintf(out, "portal %d token %s (companies %d, contacts %d, deals %d)\n",
			p.ID(), p.Token(), p.Count(hubspottest.Companies), p.Count(hubspottest.Contacts), p.Count(hubspottest.Deals))
	}

	hs := &http.Server{Handler: srv.Handler(), ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := hs.Shutdown(shutdownCtx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("shutdown: %w", err)
	}
	return nil
}
