// Package hubspottest is an in-process fake of HubSpot's CRM API for tests,
// demos and benchmarks. It behaves like HubSpot where a client can tell the
// difference: wire formats and error bodies, validation, batch limits and
// 207 partial results, the search caps and index lag, rate limits with
// their headers and 429 bodies, asynchronous imports, computed properties,
// and signed, retried webhook deliveries.
//
// A Server hosts many portals, each with its own bearer token and tier:
//
//	srv := hubspottest.NewTest(t, hubspottest.Options{})
//	portal := srv.AddPortal(hubspottest.PortalOptions{Tier: hubspottest.TierProfessional})
//	portal.Generate(hubspottest.GenerateOptions{Companies: 100, ContactsPerCompany: 3, Seed: 1})
//	// point the client at srv.URL with portal.Token()
//
// Both the numbered paths (/crm/v3/..., /crm/v4/..., /webhooks/v3/...) and
// the date-versioned ones (/crm/objects/2026-09/..., /crm/associations/2026-09/...,
// /app-webhooks/2026-09/...) are served by the same handlers.
//
// The package keeps its own wire types and deliberately does not import the
// client package (libs/hubspot): each is an independent check of the other.
package hubspottest
