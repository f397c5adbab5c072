package hubspot

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// MaxBatchSize is the most inputs HubSpot accepts in one batch request.
const MaxBatchSize = 100

// BatchInput is one record of BatchUpdate or BatchUpsert.
type BatchInput struct {
	// ID is the record id, or a value of IDProperty.
	ID string
	// IDProperty names the unique property ID is a value of ("email",
	// a custom unique property, …); "" means the record id. Required by
	// BatchUpsert.
	IDProperty string
	// Properties to set; "" clears a value.
	Properties map[string]string
}

// BatchReadRequest selects the records of BatchRead.
type BatchReadRequest struct {
	IDs []string
	// IDProperty makes IDs values of this unique property.
	IDProperty            string
	Properties            []string
	PropertiesWithHistory []string
	Archived              bool
}

// BatchResult is the outcome of one batch call. HubSpot answers 200/201 when
// every input succeeded and 207 Multi-Status when some failed; both end up
// here, with the failures in Errors.
type BatchResult struct {
	// Status is HubSpot's batch status (COMPLETE, PENDING, PROCESSING, CANCELED).
	Status string
	// Results are the records written or read, in HubSpot's order.
	Results []Object
	// Errors are the failed inputs, each mapped back to its input index.
	Errors      []InputError
	RequestedAt time.Time
	StartedAt   time.Time
	CompletedAt time.Time
	// MultiStatus is true when HubSpot answered 207.
	MultiStatus bool

	byIndex map[int]int // input index -> position in Results
}

// InputError is one failed input of a batch call.
type InputError struct {
	// Index is the position of the failed input in the slice passed to the
	// batch method, or -1 when HubSpot's error names no input.
	Index int
	// ID is the input's id, when known.
	ID          string
	Status      string
	Category    string
	SubCategory string
	Message     string
	Context     map[string][]string
	Errors      []ErrorDetail
}

// Error implements error.
func (e InputError) Error() string {
	where := "batch input"
	if e.Index >= 0 {
		where = fmt.Sprintf("batch input %d", e.Index)
	}
	if e.ID != "" {
		where += fmt.Sprintf(" (id %s)", e.ID)
	}
	return fmt.Sprintf("hubspot: %s: %s: %s", where, e.Category, e.Message)
}

// Result returns the record written for input i, if it succeeded and
// HubSpot echoed its trace id (writes) or id (reads).
func (r *BatchResult) Result(i int) (Object, bool) {
	pos, ok := r.byIndex[i]
	if !ok {
		return Object{}, false
	}
	return r.Results[pos], true
}

// Failed returns the errors of input i.
func (r *BatchResult) Failed(i int) []InputError {
	var out []InputError
	for _, e := range r.Errors {
		if e.Index == i {
			out = append(out, e)
		}
	}
	return out
}

// batchResponse is BatchResponseSimplePublicObject[WithErrors] and the
// upsert variants.
type batchResponse struct {
	Status      string          `json:"status"`
	Results     []Object        `json:"results"`
	Errors      []standardError `json:"errors"`
	NumErrors   int             `json:"numErrors"`
	RequestedAt time.Time       `json:"requestedAt,omitzero"`
	StartedAt   time.Time       `json:"startedAt"`
	CompletedAt time.Time       `json:"completedAt"`
}

// standardError is one entry of a 207 response's errors[].
type standardError struct {
	Status      string              `json:"status"`
	ID          string              `json:"id"`
	Category    string              `json:"category"`
	SubCategory rawText             `json:"subCategory"`
	Message     string              `json:"message"`
	Context     map[string][]string `json:"context"`
	Errors      []ErrorDetail       `json:"errors"`
}

// rawText decodes a JSON value that is usually a string (StandardError's
// subCategory is typed "object" in the spec).
type rawText string

func (r *rawText) UnmarshalJSON(b []byte) error {
	*r = rawText(rawString(b))
	return nil
}

// batchInputWire is SimplePublicObjectBatchInput / …Upsert.
type batchInputWire struct {
	ID                 string            `json:"id"`
	IDProperty         string            `json:"idProperty,omitempty"`
	Properties         map[string]string `json:"properties"`
	ObjectWriteTraceID string            `json:"objectWriteTraceId"`
}

// createInputWire is SimplePublicObjectBatchInputForCreate (associations
// is required, possibly empty).
type createInputWire struct {
	Properties         map[string]string `json:"properties"`
	Associations       []AssociationTo   `json:"associations"`
	ObjectWriteTraceID string            `json:"objectWriteTraceId"`
}

// inputMapper maps HubSpot's per-input results and errors back to the
// index of the input they belong to: by objectWriteTraceId (writes, one
// generated per input), else by id (reads and archives).
type inputMapper struct {
	prefix     string           // trace ids are prefix + index
	inputs     []string         // input ids, when the inputs have ids
	ids        map[string][]int // normalised input id -> indices (ids may repeat)
	idProperty string           // reads by a unique property: match on its value
}

func newInputMapper(ids []string, idProperty string) *inputMapper {
	var b [6]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	m := &inputMapper{prefix: "sb" + hex.EncodeToString(b[:]) + "-", inputs: ids, ids: map[string][]int{}, idProperty: idProperty}
	for i, id := range ids {
		key := normID(id)
		m.ids[key] = append(m.ids[key], i)
	}
	return m
}

// normID makes ids comparable: HubSpot lower-cases emails and trims values.
func normID(id string) string { return strings.ToLower(strings.TrimSpace(id)) }

func (m *inputMapper) traceID(i int) string { return m.prefix + strconv.Itoa(i) }

func (m *inputMapper) indexOfTrace(trace string) (int, bool) {
	rest, ok := strings.CutPrefix(trace, m.prefix)
	if !ok {
		return 0, false
	}
	i, err := strconv.Atoi(rest)
	return i, err == nil
}

// result builds a BatchResult from a batch response.
func (m *inputMapper) result(resp *batchResponse, status int) *BatchResult {
	r := &BatchResult{
		Status: resp.Status, Results: resp.Results, MultiStatus: status == http.StatusMultiStatus,
		RequestedAt: resp.RequestedAt, StartedAt: resp.StartedAt, CompletedAt: resp.CompletedAt,
		byIndex: map[int]int{},
	}
	if r.Results == nil {
		r.Results = []Object{}
	}
	used := map[int]bool{}
	for pos, o := range r.Results {
		if i, ok := m.indexOfTrace(o.ObjectWriteTraceID); ok {
			r.byIndex[i], used[i] = pos, true
			continue
		}
		key := o.ID
		if m.idProperty != "" {
			key = o.Properties[m.idProperty]
		}
		for _, i := range m.ids[normID(key)] {
			if !used[i] {
				r.byIndex[i], used[i] = pos, true
				break
			}
		}
	}
	for _, se := range resp.Errors {
		r.Errors = append(r.Errors, m.inputErrors(se)...)
	}
	return r
}

// inputErrors splits one StandardError into an InputError per input it names.
func (m *inputMapper) inputErrors(se standardError) []InputError {
	base := InputError{
		Index: -1, Status: se.Status, Category: se.Category, SubCategory: string(se.SubCategory),
		Message: se.Message, Context: se.Context, Errors: se.Errors,
	}
	var out []InputError
	for _, trace := range se.Context["objectWriteTraceId"] {
		e := base
		if i, ok := m.indexOfTrace(trace); ok {
			e.Index = i
			if i < len(m.inputs) {
				e.ID = m.inputs[i]
			}
		}
		out = append(out, e)
	}
	if len(out) > 0 {
		return out
	}
	ids := append(append([]string{}, se.Context["ids"]...), se.Context["id"]...)
	if se.ID != "" {
		ids = append(ids, se.ID)
	}
	for _, id := range ids {
		indices := m.ids[normID(id)]
		if len(indices) == 0 {
			e := base
			e.ID = id
			out = append(out, e)
		}
		for _, i := range indices {
			e := base
			e.Index, e.ID = i, id
			out = append(out, e)
		}
	}
	if len(out) == 0 {
		out = append(out, base)
	}
	return out
}

func checkBatchSize(op string, n int) error {
	if n == 0 {
		return fmt.Errorf("hubspot: %s: no inputs", op)
	}
	if n > MaxBatchSize {
		return fmt.Errorf("hubspot: %s: %d inputs, at most %d per request (use the *All variant to split): %w",
			op, n, MaxBatchSize, ErrBatchTooLarge)
	}
	return nil
}

// BatchRead reads up to MaxBatchSize records by id or unique property.
// Unknown ids come back as Errors (HubSpot answers 207).
func (c *Client) BatchRead(ctx context.Context, t ObjectType, req BatchReadRequest) (*BatchResult, error) {
	op := "batch read " + string(t)
	if err := t.validate(); err != nil {
		return nil, err
	}
	if err := checkBatchSize(op, len(req.IDs)); err != nil {
		return nil, err
	}
	inputs := make([]ObjectID, len(req.IDs))
	for i, id := range req.IDs {
		if id == "" {
			return nil, fmt.Errorf("hubspot: %s: inputs[%d]: empty id", op, i)
		}
		inputs[i] = ObjectID{ID: id}
	}
	body := struct {
		Inputs                []ObjectID `json:"inputs"`
		IDProperty            string     `json:"idProperty,omitempty"`
		Properties            []string   `json:"properties"`
		PropertiesWithHistory []string   `json:"propertiesWithHistory"`
	}{inputs, req.IDProperty, orEmpty(req.Properties), orEmpty(req.PropertiesWithHistory)}
	var q map[string][]string
	if req.Archived {
		q = map[string][]string{"archived": {"true"}}
	}
	m := newInputMapper(req.IDs, req.IDProperty)
	var resp batchResponse
	status, err := c.do(ctx, call{op: "objects.batch.read", method: http.MethodPost, path: c.objectsPath(t, "batch", "read"),
		query: q, in: body, out: &resp})
	if err != nil {
		return nil, err
	}
	return m.result(&resp, status), nil
}

// BatchCreate creates up to MaxBatchSize records. Each input gets an
// objectWriteTraceId, so failures in a 207 map back to their input.
func (c *Client) BatchCreate(ctx context.Context, t ObjectType, inputs []CreateInput) (*BatchResult, error) {
	op := "batch create " + string(t)
	if err := t.validate(); err != nil {
		return nil, err
	}
	if err := checkBatchSize(op, len(inputs)); err != nil {
		return nil, err
	}
	m := newInputMapper(nil, "")
	wire := make([]createInputWire, len(inputs))
	for i, in := range inputs {
		if len(in.Properties) == 0 && len(in.Associations) == 0 {
			return nil, fmt.Errorf("hubspot: %s: inputs[%d]: no properties", op, i)
		}
		assoc := in.Associations
		if assoc == nil {
			assoc = []AssociationTo{}
		}
		wire[i] = createInputWire{Properties: orEmptyMap(in.Properties), Associations: assoc, ObjectWriteTraceID: m.traceID(i)}
	}
	return c.batchWrite(ctx, t, "create", m, wire, true)
}

// BatchUpdate updates up to MaxBatchSize records by id (or unique property).
func (c *Client) BatchUpdate(ctx context.Context, t ObjectType, inputs []BatchInput) (*BatchResult, error) {
	return c.batchUpdateOrUpsert(ctx, t, "update", inputs)
}

// BatchUpsert creates or updates up to MaxBatchSize records identified by a
// unique property (IDProperty is required on every input: "email" for
// contacts, or a custom property created with hasUniqueValue). Results have
// New set for created records.
func (c *Client) BatchUpsert(ctx context.Context, t ObjectType, inputs []BatchInput) (*BatchResult, error) {
	return c.batchUpdateOrUpsert(ctx, t, "upsert", inputs)
}

func (c *Client) batchUpdateOrUpsert(ctx context.Context, t ObjectType, verb string, inputs []BatchInput) (*BatchResult, error) {
	op := "batch " + verb + " " + string(t)
	if err := t.validate(); err != nil {
		return nil, err
	}
	if err := checkBatchSize(op, len(inputs)); err != nil {
		return nil, err
	}
	ids := make([]string, len(inputs))
	for i, in := range inputs {
		if in.ID == "" {
			return nil, fmt.Errorf("hubspot: %s: inputs[%d]: empty id", op, i)
		}
		if verb == "upsert" && in.IDProperty == "" {
			return nil, fmt.Errorf("hubspot: %s: inputs[%d] (id %s): upsert needs IDProperty", op, i, in.ID)
		}
		ids[i] = in.ID
	}
	m := newInputMapper(ids, "")
	wire := make([]batchInputWire, len(inputs))
	for i, in := range inputs {
		wire[i] = batchInputWire{ID: in.ID, IDProperty: in.IDProperty, Properties: orEmptyMap(in.Properties), ObjectWriteTraceID: m.traceID(i)}
	}
	return c.batchWrite(ctx, t, verb, m, wire, false)
}

func (c *Client) batchWrite(ctx context.Context, t ObjectType, verb string, m *inputMapper, wire any, create bool) (*BatchResult, error) {
	var resp batchResponse
	status, err := c.do(ctx, call{
		op: "objects.batch." + verb, method: http.MethodPost, path: c.objectsPath(t, "batch", verb),
		in: map[string]any{"inputs": wire}, out: &resp, create: create,
	})
	if err != nil {
		return nil, err
	}
	return m.result(&resp, status), nil
}

// BatchArchive archives up to MaxBatchSize records by id. HubSpot answers
// 204 with no per-input detail; archiving an unknown id is not an error.
func (c *Client) BatchArchive(ctx context.Context, t ObjectType, ids []string) error {
	op := "batch archive " + string(t)
	if err := t.validate(); err != nil {
		return err
	}
	if err := checkBatchSize(op, len(ids)); err != nil {
		return err
	}
	inputs := make([]ObjectID, len(ids))
	for i, id := range ids {
		if id == "" {
			return fmt.Errorf("hubspot: %s: inputs[%d]: empty id", op, i)
		}
		inputs[i] = ObjectID{ID: id}
	}
	_, err := c.do(ctx, call{op: "objects.batch.archive", method: http.MethodPost, path: c.objectsPath(t, "batch", "archive"),
		in: map[string]any{"inputs": inputs}})
	return err
}

// BatchUpdateAll is BatchUpdate for any number of inputs: it sends them in
// chunks of MaxBatchSize, one after the other, and merges the results with
// error indices relative to inputs. It stops at the first failed request and
// returns what completed so far with the error.
func (c *Client) BatchUpdateAll(ctx context.Context, t ObjectType, inputs []BatchInput) (*BatchResult, error) {
	return chunked(inputs, func(part []BatchInput) (*BatchResult, error) { return c.BatchUpdate(ctx, t, part) })
}

// BatchUpsertAll is BatchUpsert for any number of inputs (see BatchUpdateAll).
func (c *Client) BatchUpsertAll(ctx context.Context, t ObjectType, inputs []BatchInput) (*BatchResult, error) {
	return chunked(inputs, func(part []BatchInput) (*BatchResult, error) { return c.BatchUpsert(ctx, t, part) })
}

// BatchCreateAll is BatchCreate for any number of inputs (see BatchUpdateAll).
func (c *Client) BatchCreateAll(ctx context.Context, t ObjectType, inputs []CreateInput) (*BatchResult, error) {
	return chunked(inputs, func(part []CreateInput) (*BatchResult, error) { return c.BatchCreate(ctx, t, part) })
}

// BatchReadAll is BatchRead for any number of ids (see BatchUpdateAll).
func (c *Client) BatchReadAll(ctx context.Context, t ObjectType, req BatchReadRequest) (*BatchResult, error) {
	return chunked(req.IDs, func(part []string) (*BatchResult, error) {
		r := req
		r.IDs = part
		return c.BatchRead(ctx, t, r)
	})
}

func chunked[T any](inputs []T, send func([]T) (*BatchResult, error)) (*BatchResult, error) {
	if len(inputs) == 0 {
		return nil, fmt.Errorf("hubspot: batch: no inputs")
	}
	all := &BatchResult{Results: []Object{}, byIndex: map[int]int{}, Status: "COMPLETE"}
	for start := 0; start < len(inputs); start += MaxBatchSize {
		end := min(start+MaxBatchSize, len(inputs))
		r, err := send(inputs[start:end])
		if err != nil {
			return all, fmt.Errorf("inputs[%d:%d]: %w", start, end, err)
		}
		for i, pos := range r.byIndex {
			all.byIndex[start+i] = len(all.Results) + pos
		}
		all.Results = append(all.Results, r.Results...)
		for _, e := range r.Errors {
			if e.Index >= 0 {
				e.Index += start
			}
			all.Errors = append(all.Errors, e)
		}
		all.MultiStatus = all.MultiStatus || r.MultiStatus
		if r.Status != "COMPLETE" {
			all.Status = r.Status
		}
		if all.StartedAt.IsZero() {
			all.RequestedAt, all.StartedAt = r.RequestedAt, r.StartedAt
		}
		all.CompletedAt = r.CompletedAt
	}
	return all, nil
}

func orEmpty(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func orEmptyMap(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}
