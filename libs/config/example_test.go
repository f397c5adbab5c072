package config_test

import (
	"fmt"
	"strings"
	"time"

	"github.com/signalbridge/signalbridge/libs/config"
)

type RedisBlock struct {
	URL string `env:"URL" default:"redis://127.0.0.1:6379/0"`
}

type IngestConfig struct {
	HTTPAddr     string        `env:"HTTP_ADDR" default:":8080" desc:"HTTP listen address"`
	HubSpotToken config.Secret `env:"HUBSPOT_TOKEN" required:"true" desc:"HubSpot private app token"`
	Timeout      time.Duration `env:"TIMEOUT" default:"5s"`
	Redis        RedisBlock    `env:"REDIS"`
}

func Example() {
	env := map[string]string{
		"SB_INGEST_HUBSPOT_TOKEN": "pat-na1-secret",
		"SB_INGEST_REDIS_URL":     "redis://redis:6379/2",
	}
	var cfg IngestConfig
	if err := config.Load("SB_INGEST", func(k string) string { return env[k] }, &cfg); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(config.Format("SB_INGEST", cfg))
	fmt.Println("token length:", len(cfg.HubSpotToken.Reveal()))
	// Output:
	// SB_INGEST_HTTP_ADDR=:8080
	// SB_INGEST_HUBSPOT_TOKEN=***
	// SB_INGEST_TIMEOUT=5s
	// SB_INGEST_REDIS_URL=redis://redis:6379/2
	// token length: 14
}

func ExampleLoad_errors() {
	env := map[string]string{"SB_INGEST_TIMEOUT": "5"}
	var cfg IngestConfig
	err := config.Load("SB_INGEST", func(k string) string { return env[k] }, &cfg)
	fmt.Println(err)
	// Output:
	// SB_INGEST_HUBSPOT_TOKEN (HubSpot private app token): required but not set
	// SB_INGEST_TIMEOUT="5": invalid value: expected a duration such as 250ms, 5s or 1m30s
}

func ExampleDescribe() {
	for _, v := range config.Describe("SB_INGEST", (*IngestConfig)(nil)) {
		line := fmt.Sprintf("%-24s default=%-26q required=%-5v secret=%-5v %s", v.Name, v.Default, v.Required, v.Secret, v.Desc)
		fmt.Println(strings.TrimSpace(line))
	}
	// Output:
	// SB_INGEST_HTTP_ADDR      default=":8080"                    required=false secret=false HTTP listen address
	// SB_INGEST_HUBSPOT_TOKEN  default=""                         required=true  secret=true  HubSpot private app token
	// SB_INGEST_TIMEOUT        default="5s"                       required=false secret=false
	// SB_INGEST_REDIS_URL      default="redis://127.0.0.1:6379/0" required=false secret=false
}
