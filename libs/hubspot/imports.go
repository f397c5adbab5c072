package hubspot

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"net/url"
	"strconv"
	"time"
)

// Import operations per object type.
const (
	ImportCreate = "CREATE" // create only; rows matching an existing record fail
	ImportUpdate = "UPDATE" // update only, matched by record id or alternate id
	ImportUpsert = "UPSERT" // create and update
)

// Id column types of a column mapping.
const (
	// IDObjectID marks the column holding the HubSpot record id.
	IDObjectID = "HUBSPOT_OBJECT_ID"
	// IDAlternateID marks the column holding an alternate id: email for
	// contacts, domain for companies, or a unique-value property.
	IDAlternateID = "HUBSPOT_ALTERNATE_ID"
)

// Import states.
const (
	ImportStarted    = "STARTED"
	ImportProcessing = "PROCESSING"
	ImportDone       = "DONE"
	ImportFailed     = "FAILED"
	ImportCanceled   = "CANCELED"
	ImportDeferred   = "DEFERRED"
	ImportReverted   = "REVERTED"
)

// ImportRequest is the importRequest part of POST /crm/v3/imports.
type ImportRequest struct {
	Name string `json:"name"`
	// Operations maps object type ids ("0-1", "0-2", …) to ImportCreate,
	// ImportUpdate or ImportUpsert.
	Operations map[string]string `json:"importOperations,omitempty"`
	// DateFormat is MONTH_DAY_YEAR, DAY_MONTH_YEAR or YEAR_MONTH_DAY.
	DateFormat              string       `json:"dateFormat,omitempty"`
	MarketableContactImport bool         `json:"marketableContactImport,omitempty"`
	Files                   []ImportFile `json:"files"`
}

// ImportFile is one uploaded file and how its columns map to properties.
type ImportFile struct {
	FileName string `json:"fileName"`
	// FileFormat is CSV (default) or SPREADSHEET.
	FileFormat string     `json:"fileFormat"`
	Page       ImportPage `json:"fileImportPage"`
	// Data is the file content. A retried upload (after a 429 or 5xx)
	// rewinds it, so pass an io.ReadSeeker (bytes.Reader, *os.File) to allow
	// retries; other readers are sent once.
	Data io.Reader `json:"-"`
}

// ImportPage is a file's header flag and column mappings.
type ImportPage struct {
	HasHeader      bool            `json:"hasHeader"`
	ColumnMappings []ColumnMapping `json:"columnMappings"`
}

// ColumnMapping maps one column to a property.
type ColumnMapping struct {
	ColumnObjectTypeID string `json:"columnObjectTypeId"`
	ColumnName         string `json:"columnName"`
	PropertyName       string `json:"propertyName,omitempty"`
	// IDColumnType is IDObjectID or IDAlternateID for the column that
	// identifies the record; "" for plain property columns.
	IDColumnType string `json:"idColumnType,omitempty"`
}

// Validate checks the request and says what is wrong where.
func (r ImportRequest) Validate() error {
	if r.Name == "" {
		return errors.New("import: empty name")
	}
	if len(r.Files) == 0 {
		return fmt.Errorf("import %q: no files", r.Name)
	}
	idColumns := map[string]bool{} // object type id -> has an id column
	names := map[string]bool{}
	for i, f := range r.Files {
		where := fmt.Sprintf("import %q: files[%d]", r.Name, i)
		switch {
		case f.FileName == "":
			return fmt.Errorf("%s: empty fileName", where)
		case names[f.FileName]:
			return fmt.Errorf("%s: duplicate fileName %q", where, f.FileName)
		case f.Data == nil:
			return fmt.Errorf("%s (%s): no Data", where, f.FileName)
		case len(f.Page.ColumnMappings) == 0:
			return fmt.Errorf("%s (%s): no column mappings", where, f.FileName)
		}
		names[f.FileName] = true
		for j, m := range f.Page.ColumnMappings {
			cw := fmt.Sprintf("%s.columnMappings[%d]", where, j)
			if m.ColumnName == "" || m.ColumnObjectTypeID == "" {
				return fmt.Errorf("%s: columnName %q and columnObjectTypeId %q are required", cw, m.ColumnName, m.ColumnObjectTypeID)
			}
			switch m.IDColumnType {
			case "":
				if m.PropertyName == "" {
					return fmt.Errorf("%s (%s): propertyName is required", cw, m.ColumnName)
				}
			case IDAlternateID:
				if m.PropertyName == "" {
					return fmt.Errorf("%s (%s): an alternate-id column needs propertyName (email, domain or a unique-value property)", cw, m.ColumnName)
				}
				idColumns[m.ColumnObjectTypeID] = true
			case IDObjectID:
				idColumns[m.ColumnObjectTypeID] = true
			default:
				return fmt.Errorf("%s (%s): idColumnType %q, want %s or %s", cw, m.ColumnName, m.IDColumnType, IDObjectID, IDAlternateID)
			}
		}
	}
	for typeID, op := range r.Operations {
		switch op {
		case ImportCreate, ImportUpsert:
		case ImportUpdate:
			if !idColumns[typeID] {
				return fmt.Errorf("import %q: importOperations[%s] is UPDATE but no column of that object has idColumnType %s or %s",
					r.Name, typeID, IDObjectID, IDAlternateID)
			}
		default:
			return fmt.Errorf("import %q: importOperations[%s] = %q, want CREATE, UPDATE or UPSERT", r.Name, typeID, op)
		}
	}
	return nil
}

// Import is an import job (PublicImportResponse).
type Import struct {
	ID                  string    `json:"id"`
	State               string    `json:"state"`
	ImportName          string    `json:"importName,omitempty"`
	ImportSource        string    `json:"importSource,omitempty"`
	OptOutImport        bool      `json:"optOutImport"`
	MappedObjectTypeIDs []string  `json:"mappedObjectTypeIds"`
	CreatedAt           time.Time `json:"createdAt"`
	UpdatedAt           time.Time `json:"updatedAt"`
	Metadata            struct {
		// Counters are per-outcome row counts (e.g. TOTAL_ROWS, CREATED_OBJECTS,
		// UPDATED_OBJECTS, ERRORS).
		Counters map[string]int `json:"counters"`
		FileIDs  []string       `json:"fileIds"`
	} `json:"metadata"`
}

// Finished reports whether the import reached a final state.
func (i *Import) Finished() bool {
	switch i.State {
	case ImportDone, ImportFailed, ImportCanceled, ImportReverted:
		return true
	}
	return false
}

// StartImport uploads the files (multipart: importRequest + files) and
// starts an asynchronous import. Poll it with ImportStatus or WaitImport.
func (c *Client) StartImport(ctx context.Context, req ImportRequest) (*Import, error) {
	for i := range req.Files {
		if req.Files[i].FileFormat == "" {
			req.Files[i].FileFormat = "CSV"
		}
	}
	if err := req.Validate(); err != nil {
		return nil, fmt.Errorf("hubspot: %w", err)
	}
	meta, err := json.Marshal(req)
	if err != nil {
		return nil, fmt.Errorf("hubspot: import %q: encode importRequest: %w", req.Name, err)
	}
	sent := false
	body := func() (io.Reader, string, error) {
		if sent {
			for _, f := range req.Files {
				s, ok := f.Data.(io.Seeker)
				if !ok {
					return nil, "", fmt.Errorf("cannot resend import file %q: its Data is not an io.Seeker", f.FileName)
				}
				if _, err := s.Seek(0, io.SeekStart); err != nil {
					return nil, "", fmt.Errorf("rewind import file %q: %w", f.FileName, err)
				}
			}
		}
		sent = true
		pr, pw := io.Pipe()
		mw := multipart.NewWriter(pw)
		go func() { pw.CloseWithError(writeImportBody(mw, meta, req.Files)) }()
		return pr, mw.FormDataContentType(), nil
	}
	var out Import
	if _, err := c.do(ctx, call{op: "imports.start", method: http.MethodPost, path: c.crmPath("imports"), body: body, out: &out, create: true}); err != nil {
		return nil, err
	}
	return &out, nil
}

func writeImportBody(mw *multipart.Writer, meta []byte, files []ImportFile) error {
	if err := mw.WriteField("importRequest", string(meta)); err != nil {
		return err
	}
	for _, f := range files {
		h := textproto.MIMEHeader{}
		h.Set("Content-Disposition", multipart.FileContentDisposition("files", f.FileName))
		ct := "text/csv"
		if f.FileFormat == "SPREADSHEET" {
			ct = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
		}
		h.Set("Content-Type", ct)
		w, err := mw.CreatePart(h)
		if err != nil {
			return err
		}
		if _, err := io.Copy(w, f.Data); err != nil {
			return fmt.Errorf("read import file %q: %w", f.FileName, err)
		}
	}
	return mw.Close()
}

// ImportStatus reads an import's state and counters.
func (c *Client) ImportStatus(ctx context.Context, importID string) (*Import, error) {
	if importID == "" {
		return nil, errors.New("hubspot: import status: empty id")
	}
	var out Import
	if _, err := c.do(ctx, call{op: "imports.get", method: http.MethodGet, path: c.crmPath("imports", importID), out: &out}); err != nil {
		return nil, err
	}
	return &out, nil
}

// WaitImport polls an import every interval (default 5 s) until it finishes
// or ctx ends.
func (c *Client) WaitImport(ctx context.Context, importID string, interval time.Duration) (*Import, error) {
	if interval <= 0 {
		interval = 5 * time.Second
	}
	for {
		imp, err := c.ImportStatus(ctx, importID)
		if err != nil || imp.Finished() {
			return imp, err
		}
		if err := sleep(ctx, interval); err != nil {
			return imp, fmt.Errorf("hubspot: wait import %s (state %s): %w", importID, imp.State, err)
		}
	}
}

// CancelImport cancels an active import.
func (c *Client) CancelImport(ctx context.Context, importID string) error {
	if importID == "" {
		return errors.New("hubspot: cancel import: empty id")
	}
	_, err := c.do(ctx, call{op: "imports.cancel", method: http.MethodPost, path: c.crmPath("imports", importID, "cancel")})
	return err
}

// ImportError is one failed row of an import (PublicImportError).
type ImportError struct {
	ID                string `json:"id"`
	ErrorType         string `json:"errorType"`
	ErrorMessage      string `json:"errorMessage,omitempty"`
	InvalidValue      string `json:"invalidValue,omitempty"`
	ObjectType        string `json:"objectType,omitempty"`
	ObjectTypeID      string `json:"objectTypeId,omitempty"`
	KnownColumnNumber int    `json:"knownColumnNumber,omitempty"`
	// CreatedAt is epoch milliseconds.
	CreatedAt  int64 `json:"createdAt"`
	SourceData struct {
		LineNumber int      `json:"lineNumber"`
		RowData    []string `json:"rowData"`
		FileID     int64    `json:"fileId"`
	} `json:"sourceData"`
}

// ImportErrorPage is one page of ImportErrors.
type ImportErrorPage struct {
	Results []ImportError `json:"results"`
	Paging  *Paging       `json:"paging,omitempty"`
}

// ImportErrors reads one page (limit default 100) of an import's row
// errors, with messages and row data.
func (c *Client) ImportErrors(ctx context.Context, importID, after string, limit int) (*ImportErrorPage, error) {
	if importID == "" {
		return nil, errors.New("hubspot: import errors: empty id")
	}
	if limit == 0 {
		limit = 100
	}
	if limit < 1 || limit > 500 {
		return nil, fmt.Errorf("hubspot: import %s errors: limit %d out of range 1..500", importID, limit)
	}
	q := url.Values{"limit": {strconv.Itoa(limit)}, "includeErrorMessage": {"true"}, "includeRowData": {"true"}}
	if after != "" {
		q.Set("after", after)
	}
	var out ImportErrorPage
	if _, err := c.do(ctx, call{op: "imports.errors", method: http.MethodGet, path: c.crmPath("imports", importID, "errors"), query: q, out: &out}); err != nil {
		return nil, err
	}
	return &out, nil
}

// AllImportErrors iterates over every row error of an import.
func (c *Client) AllImportErrors(ctx context.Context, importID string) iter.Seq2[ImportError, error] {
	return func(yield func(ImportError, error) bool) {
		after := ""
		for {
			page, err := c.ImportErrors(ctx, importID, after, 0)
			if err != nil {
				yield(ImportError{}, err)
				return
			}
			for _, e := range page.Results {
				if !yield(e, nil) {
					return
				}
			}
			if after = page.Paging.NextAfter(); after == "" {
				return
			}
		}
	}
}
