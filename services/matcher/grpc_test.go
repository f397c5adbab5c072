package matcher_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"

	mappingv1 "github.com/signalbridge/signalbridge/libs/gen/signalbridge/mapping/v1"
	signalsv1 "github.com/signalbridge/signalbridge/libs/gen/signalbridge/signals/v1"
	"github.com/signalbridge/signalbridge/services/matcher"
	"github.com/signalbridge/signalbridge/services/matcher/internal/testenv"
)

func TestMappingService(t *testing.T) {
	t.Parallel()
	e := start(t, options{})
	co, ct := seed(t, e.sb)
	e.sync(t)
	ctx := context.Background()
	m := e.mapping

	t.Run("ResolveAccount with aliases", func(t *testing.T) {
		res, err := m.ResolveAccount(ctx, &mappingv1.ResolveAccountRequest{PortalId: e.portal,
			Account: &mappingv1.AccountQuery{Domain: "https://www.Unknown-Y.com/x", Aliases: []string{"ALIAS-TWO.net"}}})
		if err != nil {
			t.Fatal(err)
		}
		c := res.GetAnswer().GetCompany()
		if c.GetCompanyId() != co[3] || c.GetEvidence().GetRule() != signalsv1.MatchRule_MATCH_RULE_ADDITIONAL_DOMAIN || c.GetEvidence().GetMatchedDomain() != "alias-two.net" {
			t.Fatalf("answer = %v", res.GetAnswer())
		}
	})
	t.Run("ResolveAccount unmatched is an answer, not NotFound", func(t *testing.T) {
		res, err := m.ResolveAccount(ctx, &mappingv1.ResolveAccountRequest{PortalId: e.portal, Account: &mappingv1.AccountQuery{Domain: "outlook.com"}})
		if err != nil || res.GetAnswer().GetCompany() != nil ||
			res.GetAnswer().GetUnmatchedReason() != signalsv1.UnmatchedReason_UNMATCHED_REASON_FREE_MAIL_DOMAIN {
			t.Fatalf("answer = %v, %v", res, err)
		}
	})
	invalid := []struct {
		name  string
		req   *mappingv1.ResolveAccountRequest
		field string
	}{
		{"bad domain", &mappingv1.ResolveAccountRequest{PortalId: e.portal, Account: &mappingv1.AccountQuery{Domain: "localhost"}}, "account.domain"},
		{"IP address", &mappingv1.ResolveAccountRequest{PortalId: e.portal, Account: &mappingv1.AccountQuery{Domain: "10.0.0.1"}}, "account.domain"},
		{"bad alias", &mappingv1.ResolveAccountRequest{PortalId: e.portal, Account: &mappingv1.AccountQuery{Domain: "acme.com", Aliases: []string{"ok.com", "co.uk"}}}, "account.aliases[1]"},
		{"no account", &mappingv1.ResolveAccountRequest{PortalId: e.portal}, "account.domain"},
		{"no portal", &mappingv1.ResolveAccountRequest{Account: &mappingv1.AccountQuery{Domain: "acme.com"}}, "portal_id"},
		{"bad portal token", &mappingv1.ResolveAccountRequest{PortalId: "12.>", Account: &mappingv1.AccountQuery{Domain: "acme.com"}}, "portal_id"},
	}
	for _, tc := range invalid {
		t.Run("InvalidArgument: "+tc.name, func(t *testing.T) {
			_, err := m.ResolveAccount(ctx, tc.req)
			st := status.Convert(err)
			if st.Code() != codes.InvalidArgument || !strings.HasPrefix(st.Message(), tc.field) {
				t.Fatalf("err = %v, want InvalidArgument on %s", err, tc.field)
			}
			var br *errdetails.BadRequest
			for _, d := range st.Details() {
				if b, ok := d.(*errdetails.BadRequest); ok {
					br = b
				}
			}
			if br == nil || br.GetFieldViolations()[0].GetField() != tc.field {
				t.Fatalf("details = %v, want a BadRequest on %s", st.Details(), tc.field)
			}
		})
	}
	t.Run("NotFound for an unknown portal", func(t *testing.T) {
		_, err := m.ResolveAccount(ctx, &mappingv1.ResolveAccountRequest{PortalId: "424242", Account: &mappingv1.AccountQuery{Domain: "acme.com"}})
		if status.Code(err) != codes.NotFound {
			t.Fatalf("err = %v, want NotFound", err)
		}
	})
	t.Run("BatchResolveAccounts in order with per-item errors", func(t *testing.T) {
		res, err := m.BatchResolveAccounts(ctx, &mappingv1.BatchResolveAccountsRequest{PortalId: e.portal, Accounts: []*mappingv1.AccountQuery{
			{Domain: "tie.com"}, {Domain: "not a domain"}, {Domain: "web-only.io"}, {Domain: "us.branch.com"}, {Domain: "branch.com"},
		}})
		if err != nil {
			t.Fatal(err)
		}
		a := res.GetAnswers()
		if len(a) != 5 || a[0].GetCompany().GetCompanyId() != co[1] || a[1].GetError() == "" || !strings.HasPrefix(a[1].GetError(), "accounts[1].domain") ||
			a[2].GetCompany().GetCompanyId() != co[2] || a[3].GetCompany().GetCompanyId() != co[4] || a[4].GetCompany() != nil {
			t.Fatalf("answers = %v", a)
		}
	})
	t.Run("BatchResolveAccounts of 1000", func(t *testing.T) {
		qs := make([]*mappingv1.AccountQuery, 1000)
		for i := range qs {
			qs[i] = &mappingv1.AccountQuery{Domain: []string{"tie.com", "main.com", fmt.Sprintf("nobody-%d.org", i)}[i%3]}
		}
		res, err := m.BatchResolveAccounts(ctx, &mappingv1.BatchResolveAccountsRequest{PortalId: e.portal, Accounts: qs})
		if err != nil || len(res.GetAnswers()) != 1000 {
			t.Fatalf("%d answers, %v", len(res.GetAnswers()), err)
		}
		for i, a := range res.GetAnswers() {
			want := []string{co[1], co[3], ""}[i%3]
			if a.GetCompany().GetCompanyId() != want {
				t.Fatalf("answer %d = %v, want %q", i, a, want)
			}
		}
		_, err = m.BatchResolveAccounts(ctx, &mappingv1.BatchResolveAccountsRequest{PortalId: e.portal, Accounts: append(qs, qs[0])})
		if status.Code(err) != codes.InvalidArgument {
			t.Fatalf("1001 accounts: err = %v, want InvalidArgument", err)
		}
	})
	t.Run("ResolveContact", func(t *testing.T) {
		res, err := m.ResolveContact(ctx, &mappingv1.ResolveContactRequest{PortalId: e.portal, Email: " ANN@Private.org "})
		if err != nil || res.GetAnswer().GetContact().GetContactId() != ct[0] ||
			res.GetAnswer().GetContact().GetEvidence().GetRule() != signalsv1.MatchRule_MATCH_RULE_CONTACT_ADDITIONAL_EMAIL {
			t.Fatalf("answer = %v, %v", res, err)
		}
		if _, err := m.ResolveContact(ctx, &mappingv1.ResolveContactRequest{PortalId: e.portal, Email: "Ann <ann@main.com>"}); status.Code(err) != codes.InvalidArgument {
			t.Fatalf("display-name email: err = %v", err)
		}
	})
	t.Run("BatchResolveContacts", func(t *testing.T) {
		res, err := m.BatchResolveContacts(ctx, &mappingv1.BatchResolveContactsRequest{PortalId: e.portal,
			Emails: []string{"ann@main.com", "nobody@main.com", "@@", "ann@private.org"}})
		if err != nil {
			t.Fatal(err)
		}
		a := res.GetAnswers()
		if len(a) != 4 || a[0].GetContact().GetContactId() != ct[0] || a[1].GetContact() != nil || a[1].GetError() != "" ||
			!strings.HasPrefix(a[2].GetError(), "emails[2]") || a[3].GetContact().GetContactId() != ct[0] {
			t.Fatalf("answers = %v", a)
		}
	})
	t.Run("reflection lists MappingService", func(t *testing.T) {
		stream, err := reflectionpb.NewServerReflectionClient(e.conn).ServerReflectionInfo(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := stream.Send(&reflectionpb.ServerReflectionRequest{MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{}}); err != nil {
			t.Fatal(err)
		}
		res, err := stream.Recv()
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, s := range res.GetListServicesResponse().GetService() {
			names = append(names, s.GetName())
		}
		if !slices.Contains(names, mappingv1.MappingService_ServiceDesc.ServiceName) {
			t.Fatalf("services = %v", names)
		}
		_ = stream.CloseSend()
	})
	t.Run("health", func(t *testing.T) {
		for _, svc := range []string{mappingv1.MappingService_ServiceDesc.ServiceName, matcher.MirrorHealthService} {
			testenv.Eventually(t, 5*time.Second, svc+" SERVING", func() bool {
				res, err := e.health.Check(ctx, &healthpb.HealthCheckRequest{Service: svc})
				return err == nil && res.GetStatus() == healthpb.HealthCheckResponse_SERVING
			})
		}
	})
}
