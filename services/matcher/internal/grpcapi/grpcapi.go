// Package grpcapi serves signalbridge.mapping.v1.MappingService: account and contact
// resolution for one portal per call, from the matcher's mirror and HubSpot.
package grpcapi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	mappingv1 "github.com/signalbridge/signalbridge/libs/gen/signalbridge/mapping/v1"
	"github.com/signalbridge/signalbridge/libs/natsx"
	"github.com/signalbridge/signalbridge/libs/portal"
	"github.com/signalbridge/signalbridge/services/matcher/internal/match"
	"github.com/signalbridge/signalbridge/services/matcher/internal/resolve"
)

// MaxBatch is the most accounts or emails of one batch call.
const MaxBatch = 1000

// chunk is how many queries go to the resolver at once (one Redis round trip each).
const chunk = 250

// Portals tells which portals exist.
type Portals interface {
	Get(portalID string) (*portal.Config, bool)
}

// Server implements MappingService.
type Server struct {
	mappingv1.UnimplementedMappingServiceServer
	res     *resolve.Resolver
	portals Portals
	log     *slog.Logger
}

// New returns a Server.
func New(res *resolve.Resolver, portals Portals, log *slog.Logger) *Server {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Server{res: res, portals: portals, log: log}
}

// Register adds the service to g.
func (s *Server) Register(g *grpc.Server) { mappingv1.RegisterMappingServiceServer(g, s) }

type violation struct{ field, msg string }

func invalid(vs ...violation) error {
	st := status.New(codes.InvalidArgument, fmt.Sprintf("%s: %s", vs[0].field, vs[0].msg))
	br := &errdetails.BadRequest{}
	for _, v := range vs {
		br.FieldViolations = append(br.FieldViolations, &errdetails.BadRequest_FieldViolation{Field: v.field, Description: v.msg})
	}
	if d, err := st.WithDetails(br); err == nil {
		st = d
	}
	return st.Err()
}

// checkPortal validates the portal id and that it is configured.
func (s *Server) checkPortal(id string) error {
	if id == "" {
		return invalid(violation{"portal_id", "required"})
	}
	if err := natsx.ValidToken(id); err != nil {
		return invalid(violation{"portal_id", err.Error()})
	}
	if _, ok := s.portals.Get(id); !ok {
		return status.Errorf(codes.NotFound, "portal %s is not configured", id)
	}
	return nil
}

// resolveErr maps a resolver failure to a status.
func resolveErr(ctx context.Context, err error) error {
	switch {
	case errors.Is(err, context.DeadlineExceeded) || ctx.Err() == context.DeadlineExceeded:
		return status.Error(codes.DeadlineExceeded, "deadline exceeded while resolving")
	case errors.Is(err, context.Canceled) || ctx.Err() == context.Canceled:
		return status.Error(codes.Canceled, "request cancelled")
	}
	return status.Errorf(codes.Unavailable, "cannot resolve now (retry later): %v", err)
}

// account validates one account query; field prefixes its paths.
func account(q *mappingv1.AccountQuery, field string) (match.Account, []violation) {
	if q == nil || (q.GetDomain() == "" && len(q.GetAliases()) == 0) {
		return match.Account{}, []violation{{field + ".domain", "required (or at least one alias)"}}
	}
	a, errs := match.NormalizeAccount(q.GetDomain(), q.GetAliases())
	var vs []violation
	for _, e := range errs {
		vs = append(vs, violation{field + "." + e.Field, fmt.Sprintf("%q: %v", e.Value, e.Err)})
	}
	return a, vs
}

// resolve runs queries in chunks.
func (s *Server) resolve(ctx context.Context, portalID string, qs []resolve.Query) ([]resolve.Answer, error) {
	out := make([]resolve.Answer, 0, len(qs))
	for start := 0; start < len(qs); start += chunk {
		ans, err := s.res.Resolve(ctx, portalID, qs[start:min(start+chunk, len(qs))])
		if err != nil {
			return nil, resolveErr(ctx, err)
		}
		out = append(out, ans...)
	}
	return out, nil
}

func accountAnswer(a match.AccountResult) *mappingv1.AccountAnswer {
	return &mappingv1.AccountAnswer{Company: a.Proto(), UnmatchedReason: a.Unmatched}
}

// ResolveAccount resolves one account. A bad domain or alias is InvalidArgument; an
// account that matches nothing is an answer with its reason, not an error.
func (s *Server) ResolveAccount(ctx context.Context, req *mappingv1.ResolveAccountRequest) (*mappingv1.ResolveAccountResponse, error) {
	if err := s.checkPortal(req.GetPortalId()); err != nil {
		return nil, err
	}
	a, vs := account(req.GetAccount(), "account")
	if len(vs) > 0 {
		return nil, invalid(vs...)
	}
	ans, err := s.resolve(ctx, req.GetPortalId(), []resolve.Query{{Account: a}})
	if err != nil {
		return nil, err
	}
	return &mappingv1.ResolveAccountResponse{Answer: accountAnswer(ans[0].Account)}, nil
}

// BatchResolveAccounts resolves up to MaxBatch accounts; answers come in request order,
// an invalid account gets an answer with its error.
func (s *Server) BatchResolveAccounts(ctx context.Context, req *mappingv1.BatchResolveAccountsRequest) (*mappingv1.BatchResolveAccountsResponse, error) {
	if err := s.checkPortal(req.GetPortalId()); err != nil {
		return nil, err
	}
	n := len(req.GetAccounts())
	if n == 0 || n > MaxBatch {
		return nil, invalid(violation{"accounts", fmt.Sprintf("1 to %d accounts per call (got %d)", MaxBatch, n)})
	}
	answers := make([]*mappingv1.AccountAnswer, n)
	var qs []resolve.Query
	var idx []int
	for i, q := range req.GetAccounts() {
		a, vs := account(q, fmt.Sprintf("accounts[%d]", i))
		if len(vs) > 0 {
			answers[i] = &mappingv1.AccountAnswer{Error: vs[0].field + ": " + vs[0].msg}
			continue
		}
		qs = append(qs, resolve.Query{Account: a})
		idx = append(idx, i)
	}
	ans, err := s.resolve(ctx, req.GetPortalId(), qs)
	if err != nil {
		return nil, err
	}
	for j, i := range idx {
		answers[i] = accountAnswer(ans[j].Account)
	}
	return &mappingv1.BatchResolveAccountsResponse{Answers: answers}, nil
}

// ResolveContact resolves one email address.
func (s *Server) ResolveContact(ctx context.Context, req *mappingv1.ResolveContactRequest) (*mappingv1.ResolveContactResponse, error) {
	if err := s.checkPortal(req.GetPortalId()); err != nil {
		return nil, err
	}
	if req.GetEmail() == "" {
		return nil, invalid(violation{"email", "required"})
	}
	email, ferr := match.NormalizeEmail(req.GetEmail())
	if ferr != nil {
		return nil, invalid(violation{"email", ferr.Err.Error()})
	}
	ans, err := s.resolve(ctx, req.GetPortalId(), []resolve.Query{{Email: email}})
	if err != nil {
		return nil, err
	}
	return &mappingv1.ResolveContactResponse{Answer: &mappingv1.ContactAnswer{Contact: ans[0].Contact.Proto()}}, nil
}

// BatchResolveContacts resolves up to MaxBatch email addresses, in request order.
func (s *Server) BatchResolveContacts(ctx context.Context, req *mappingv1.BatchResolveContactsRequest) (*mappingv1.BatchResolveContactsResponse, error) {
	if err := s.checkPortal(req.GetPortalId()); err != nil {
		return nil, err
	}
	n := len(req.GetEmails())
	if n == 0 || n > MaxBatch {
		return nil, invalid(violation{"emails", fmt.Sprintf("1 to %d emails per call (got %d)", MaxBatch, n)})
	}
	answers := make([]*mappingv1.ContactAnswer, n)
	var qs []resolve.Query
	var idx []int
	for i, raw := range req.GetEmails() {
		email, ferr := match.NormalizeEmail(raw)
		if ferr != nil {
			answers[i] = &mappingv1.ContactAnswer{Error: fmt.Sprintf("emails[%d]: %v", i, ferr.Err)}
			continue
		}
		qs = append(qs, resolve.Query{Email: email})
		idx = append(idx, i)
	}
	ans, err := s.resolve(ctx, req.GetPortalId(), qs)
	if err != nil {
		return nil, err
	}
	for j, i := range idx {
		answers[i] = &mappingv1.ContactAnswer{Contact: ans[j].Contact.Proto()}
	}
	return &mappingv1.BatchResolveContactsResponse{Answers: answers}, nil
}
