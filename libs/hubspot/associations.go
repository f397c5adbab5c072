package hubspot

import (
	"context"
	"fmt"
	"iter"
	"net/http"
	"net/url"
	"strconv"
)

// Association categories.
const (
	HubSpotDefined    = "HUBSPOT_DEFINED"
	UserDefined       = "USER_DEFINED"
	IntegratorDefined = "INTEGRATOR_DEFINED"
)

// HubSpot-defined association type ids (hubspot-api-nodejs AssociationTypes).
const (
	AssocContactToCompany        = 279
	AssocContactToCompanyPrimary = 1
	AssocCompanyToContact        = 280
	AssocCompanyToContactPrimary = 2
	AssocDealToCompany           = 341
	AssocDealToCompanyPrimary    = 5
	AssocCompanyToDeal           = 342
	AssocContactToDeal           = 4
	AssocDealToContact           = 3
	AssocTaskToContact           = 204
	AssocTaskToCompany           = 192
	AssocTaskToDeal              = 216
	AssocNoteToContact           = 202
	AssocNoteToCompany           = 190
	AssocNoteToDeal              = 214
)

// AssociationSpec is an association type: category plus type id.
type AssociationSpec struct {
	Category string `json:"associationCategory"`
	TypeID   int    `json:"associationTypeId"`
}

// Defined returns the HUBSPOT_DEFINED association type with the given id.
func Defined(typeID int) AssociationSpec {
	return AssociationSpec{Category: HubSpotDefined, TypeID: typeID}
}

// AssociationType is an association type as HubSpot reports it on reads,
// with its label (empty for the unlabelled default).
type AssociationType struct {
	Category string `json:"category"`
	TypeID   int    `json:"typeId"`
	Label    string `json:"label,omitempty"`
}

// AssociateDefault creates the default (unlabelled) association between two
// records. It is idempotent.
func (c *Client) AssociateDefault(ctx context.Context, fromType ObjectType, fromID string, toType ObjectType, toID string) error {
	if err := checkPair(fromType, fromID, toType, toID); err != nil {
		return fmt.Errorf("hubspot: associate default: %w", err)
	}
	_, err := c.do(ctx, call{op: "associations.default", method: http.MethodPut,
		path: c.assocObjectPath(fromType, fromID, "default", string(toType), toID)})
	return err
}

// Associate creates labelled associations between two records.
func (c *Client) Associate(ctx context.Context, fromType ObjectType, fromID string, toType ObjectType, toID string, types ...AssociationSpec) error {
	if err := checkPair(fromType, fromID, toType, toID); err != nil {
		return fmt.Errorf("hubspot: associate: %w", err)
	}
	if len(types) == 0 {
		return fmt.Errorf("hubspot: associate %s %s -> %s %s: no association types (use AssociateDefault)", fromType, fromID, toType, toID)
	}
	_, err := c.do(ctx, call{op: "associations.create", method: http.MethodPut,
		path: c.assocObjectPath(fromType, fromID, string(toType), toID), in: types})
	return err
}

// RemoveAssociation removes every association between two records.
func (c *Client) RemoveAssociation(ctx context.Context, fromType ObjectType, fromID string, toType ObjectType, toID string) error {
	if err := checkPair(fromType, fromID, toType, toID); err != nil {
		return fmt.Errorf("hubspot: remove association: %w", err)
	}
	_, err := c.do(ctx, call{op: "associations.delete", method: http.MethodDelete,
		path: c.assocObjectPath(fromType, fromID, string(toType), toID)})
	return err
}

func checkPair(fromType ObjectType, fromID string, toType ObjectType, toID string) error {
	if err := fromType.validate(); err != nil {
		return err
	}
	if err := toType.validate(); err != nil {
		return err
	}
	if fromID == "" || toID == "" {
		return fmt.Errorf("%s %q -> %s %q: empty id", fromType, fromID, toType, toID)
	}
	return nil
}

// AssociationInput is one pair of BatchAssociate / BatchAssociateDefault.
type AssociationInput struct {
	FromID string
	ToID   string
	// Types is required by BatchAssociate and ignored by BatchAssociateDefault.
	Types []AssociationSpec
}

// AssociationBatchResult is the outcome of a batch association write.
type AssociationBatchResult struct {
	Status string
	// Errors are the failed pairs, mapped to their input index where
	// HubSpot's error names the from id.
	Errors      []InputError
	MultiStatus bool
}

type assocBatchResponse struct {
	Status string          `json:"status"`
	Errors []standardError `json:"errors"`
}

// BatchAssociateDefault creates default associations for up to
// MaxBatchSize pairs.
func (c *Client) BatchAssociateDefault(ctx context.Context, fromType, toType ObjectType, pairs []AssociationInput) (*AssociationBatchResult, error) {
	return c.batchAssociate(ctx, fromType, toType, pairs, false)
}

// BatchAssociate creates labelled associations for up to MaxBatchSize pairs;
// every pair needs at least one type.
func (c *Client) BatchAssociate(ctx context.Context, fromType, toType ObjectType, pairs []AssociationInput) (*AssociationBatchResult, error) {
	return c.batchAssociate(ctx, fromType, toType, pairs, true)
}

func (c *Client) batchAssociate(ctx context.Context, fromType, toType ObjectType, pairs []AssociationInput, labelled bool) (*AssociationBatchResult, error) {
	op := fmt.Sprintf("batch associate %s -> %s", fromType, toType)
	if err := checkBatchSize(op, len(pairs)); err != nil {
		return nil, err
	}
	type wire struct {
		From  ObjectID          `json:"from"`
		To    ObjectID          `json:"to"`
		Types []AssociationSpec `json:"types,omitempty"`
	}
	inputs := make([]wire, len(pairs))
	fromIDs := make([]string, len(pairs))
	for i, p := range pairs {
		if err := checkPair(fromType, p.FromID, toType, p.ToID); err != nil {
			return nil, fmt.Errorf("hubspot: %s: inputs[%d]: %w", op, i, err)
		}
		if labelled && len(p.Types) == 0 {
			return nil, fmt.Errorf("hubspot: %s: inputs[%d] (%s -> %s): no association types", op, i, p.FromID, p.ToID)
		}
		inputs[i] = wire{From: ObjectID{p.FromID}, To: ObjectID{p.ToID}}
		if labelled {
			inputs[i].Types = p.Types
		}
		fromIDs[i] = p.FromID
	}
	verb, opName := "create", "associations.batch.create"
	if !labelled {
		verb, opName = "associate/default", "associations.batch.default"
	}
	path := c.assocPath(string(fromType), string(toType), "batch") + "/" + verb
	var resp assocBatchResponse
	status, err := c.do(ctx, call{op: opName, method: http.MethodPost, path: path, in: map[string]any{"inputs": inputs}, out: &resp})
	if err != nil {
		return nil, err
	}
	m := newInputMapper(fromIDs, "")
	pairs2 := map[[2]string][]int{}
	for i, p := range pairs {
		k := [2]string{normID(p.FromID), normID(p.ToID)}
		pairs2[k] = append(pairs2[k], i)
	}
	out := &AssociationBatchResult{Status: resp.Status, MultiStatus: status == http.StatusMultiStatus}
	for _, se := range resp.Errors {
		out.Errors = append(out.Errors, pairErrors(m, pairs2, se)...)
	}
	return out, nil
}

// pairErrors maps an association error naming fromObjectId and toObjectId
// to the inputs with that pair, else falls back to the from id.
func pairErrors(m *inputMapper, pairs map[[2]string][]int, se standardError) []InputError {
	from, to := se.Context["fromObjectId"], se.Context["toObjectId"]
	if len(from) != 1 || len(to) != 1 {
		return m.inputErrors(se)
	}
	indices := pairs[[2]string{normID(from[0]), normID(to[0])}]
	if len(indices) == 0 {
		return m.inputErrors(se)
	}
	base := m.inputErrors(standardError{Status: se.Status, Category: se.Category, SubCategory: se.SubCategory,
		Message: se.Message, Context: se.Context, Errors: se.Errors})[0]
	out := make([]InputError, len(indices))
	for j, i := range indices {
		e := base
		e.Index, e.ID = i, from[0]
		out[j] = e
	}
	return out
}

// AssociationArchiveInput removes all associations from one record to others.
type AssociationArchiveInput struct {
	FromID string
	ToIDs  []string
}

// BatchArchiveAssociations removes all associations between each from
// record and its listed to records (up to MaxBatchSize inputs).
func (c *Client) BatchArchiveAssociations(ctx context.Context, fromType, toType ObjectType, inputs []AssociationArchiveInput) error {
	op := fmt.Sprintf("batch archive associations %s -> %s", fromType, toType)
	if err := checkBatchSize(op, len(inputs)); err != nil {
		return err
	}
	type wire struct {
		From ObjectID   `json:"from"`
		To   []ObjectID `json:"to"`
	}
	body := make([]wire, len(inputs))
	for i, in := range inputs {
		if len(in.ToIDs) == 0 {
			return fmt.Errorf("hubspot: %s: inputs[%d] (from %s): no to ids", op, i, in.FromID)
		}
		w := wire{From: ObjectID{in.FromID}}
		for j, to := range in.ToIDs {
			if err := checkPair(fromType, in.FromID, toType, to); err != nil {
				return fmt.Errorf("hubspot: %s: inputs[%d].ToIDs[%d]: %w", op, i, j, err)
			}
			w.To = append(w.To, ObjectID{to})
		}
		body[i] = w
	}
	_, err := c.do(ctx, call{op: "associations.batch.archive", method: http.MethodPost,
		path: c.assocPath(string(fromType), string(toType), "batch", "archive"), in: map[string]any{"inputs": body}})
	return err
}

// Association is one associated record with all association types to it.
type Association struct {
	ToObjectID string            `json:"toObjectId"`
	Types      []AssociationType `json:"associationTypes"`
}

// AssociationPage is one page of ReadAssociations.
type AssociationPage struct {
	Results []Association `json:"results"`
	Paging  *Paging       `json:"paging,omitempty"`
}

// ReadAssociations reads one page (limit ≤ 500, default 500) of a record's
// associations to a type.
func (c *Client) ReadAssociations(ctx context.Context, fromType ObjectType, id string, toType ObjectType, after string, limit int) (*AssociationPage, error) {
	if err := checkPair(fromType, id, toType, "-"); err != nil {
		return nil, fmt.Errorf("hubspot: read associations: %w", err)
	}
	if limit == 0 {
		limit = 500
	}
	if limit < 1 || limit > 500 {
		return nil, fmt.Errorf("hubspot: read associations %s %s -> %s: limit %d out of range 1..500", fromType, id, toType, limit)
	}
	if c.dated() {
		// Date versions have no per-record read: use batch read with one input.
		return c.readAssociationsBatch(ctx, fromType, id, toType, after)
	}
	q := url.Values{"limit": {strconv.Itoa(limit)}}
	if after != "" {
		q.Set("after", after)
	}
	var out AssociationPage
	if _, err := c.do(ctx, call{op: "associations.read", method: http.MethodGet,
		path: c.assocObjectPath(fromType, id, string(toType)), query: q, out: &out}); err != nil {
		return nil, err
	}
	return &out, nil
}

func (c *Client) readAssociationsBatch(ctx context.Context, fromType ObjectType, id string, toType ObjectType, after string) (*AssociationPage, error) {
	var resp struct {
		Results []AssociationsOf `json:"results"`
		Errors  []standardError  `json:"errors"`
	}
	in := []fetchInput{{ID: id, After: after}}
	if _, err := c.do(ctx, call{op: "associations.read", method: http.MethodPost,
		path: c.assocPath(string(fromType), string(toType), "batch", "read"), in: map[string]any{"inputs": in}, out: &resp}); err != nil {
		return nil, err
	}
	out := &AssociationPage{Results: []Association{}}
	for _, r := range resp.Results {
		if r.From.ID == id {
			out.Results = append(out.Results, r.To...)
			out.Paging = r.Paging
		}
	}
	return out, nil
}

// fetchInput is PublicFetchAssociationsBatchRequest.
type fetchInput struct {
	ID    string `json:"id"`
	After string `json:"after,omitempty"`
}

// AllAssociations iterates over all of a record's associations to a type.
func (c *Client) AllAssociations(ctx context.Context, fromType ObjectType, id string, toType ObjectType) iter.Seq2[Association, error] {
	return func(yield func(Association, error) bool) {
		after := ""
		for {
			page, err := c.ReadAssociations(ctx, fromType, id, toType, after, 0)
			if err != nil {
				yield(Association{}, err)
				return
			}
			for _, a := range page.Results {
				if !yield(a, nil) {
					return
				}
			}
			if after = page.Paging.NextAfter(); after == "" {
				return
			}
		}
	}
}

// AssociationsOf is one record's associations in BatchReadAssociations.
type AssociationsOf struct {
	From ObjectID      `json:"from"`
	To   []Association `json:"to"`
	// Paging is set when the record has more associations than one page.
	Paging *Paging `json:"paging,omitempty"`
}

// BatchReadAssociationsResult holds the associations per record; records
// without associations or unknown ids appear in Errors.
type BatchReadAssociationsResult struct {
	Results []AssociationsOf
	Errors  []InputError
}

// BatchReadAssociations reads the associations of up to MaxBatchSize records
// to one type.
func (c *Client) BatchReadAssociations(ctx context.Context, fromType, toType ObjectType, ids []string) (*BatchReadAssociationsResult, error) {
	op := fmt.Sprintf("batch read associations %s -> %s", fromType, toType)
	if err := checkBatchSize(op, len(ids)); err != nil {
		return nil, err
	}
	inputs := make([]fetchInput, len(ids))
	for i, id := range ids {
		if err := checkPair(fromType, id, toType, "-"); err != nil {
			return nil, fmt.Errorf("hubspot: %s: inputs[%d]: %w", op, i, err)
		}
		inputs[i] = fetchInput{ID: id}
	}
	var resp struct {
		Results []AssociationsOf `json:"results"`
		Errors  []standardError  `json:"errors"`
	}
	if _, err := c.do(ctx, call{op: "associations.batch.read", method: http.MethodPost,
		path: c.assocPath(string(fromType), string(toType), "batch", "read"), in: map[string]any{"inputs": inputs}, out: &resp}); err != nil {
		return nil, err
	}
	m := newInputMapper(ids, "")
	out := &BatchReadAssociationsResult{Results: resp.Results}
	for _, se := range resp.Errors {
		out.Errors = append(out.Errors, m.inputErrors(se)...)
	}
	return out, nil
}
