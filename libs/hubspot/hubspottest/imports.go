package hubspottest

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Import states (PublicImportResponse.state).
const (
	ImportStarted    = "STARTED"
	ImportProcessing = "PROCESSING"
	ImportDone       = "DONE"
	ImportFailed     = "FAILED"
	ImportCanceled   = "CANCELED"
)

const (
	maxImportBytes = 512 << 20
	maxImportRows  = 1_048_576
	importChunk    = 500
)

type columnMapping struct {
	ColumnObjectTypeID   string `json:"columnObjectTypeId"`
	ColumnName           string `json:"columnName"`
	PropertyName         string `json:"propertyName"`
	ColumnType           string `json:"columnType"`
	IDColumnType         string `json:"idColumnType"`
	ToColumnObjectTypeID string `json:"toColumnObjectTypeId"`
}

func (m columnMapping) idType() string {
	if m.ColumnType != "" {
		return m.ColumnType
	}
	return m.IDColumnType
}

type importFileSpec struct {
	FileName       string `json:"fileName"`
	FileFormat     string `json:"fileFormat"`
	DateFormat     string `json:"dateFormat"`
	FileImportPage struct {
		HasHeader      bool            `json:"hasHeader"`
		ColumnMappings []columnMapping `json:"columnMappings"`
	} `json:"fileImportPage"`
}

type importRequest struct {
	Name             string            `json:"name"`
	ImportOperations map[string]string `json:"importOperations"`
	DateFormat       string            `json:"dateFormat"`
	Files            []importFileSpec  `json:"files"`
}

// importFile is one validated file of an import.
type importFile struct {
	spec      importFileSpec
	fileID    int64
	data      []byte
	kind      *objectKind
	operation string // CREATE, UPDATE, UPSERT
	idCol     int    // column index of the id column, -1 if none
	idType    string // HUBSPOT_OBJECT_ID or HUBSPOT_ALTERNATE_ID
	idProp    string // property of an alternate id
	columns   []importColumn
}

type importColumn struct {
	index int
	def   *propertyDef
}

type importErrorWire struct {
	ID                string `json:"id"`
	CreatedAt         int64  `json:"createdAt"`
	ErrorType         string `json:"errorType"`
	ErrorMessage      string `json:"errorMessage,omitempty"`
	InvalidValue      string `json:"invalidValue,omitempty"`
	KnownColumnNumber int    `json:"knownColumnNumber,omitempty"`
	ObjectType        string `json:"objectType"`
	ObjectTypeID      string `json:"objectTypeId"`
	SourceData        struct {
		LineNumber                  int      `json:"lineNumber"`
		RowData                     []string `json:"rowData"`
		AdditionalRowData           []string `json:"additionalRowData"`
		ContainsEncryptedProperties bool     `json:"containsEncryptedProperties"`
		FileID                      int64    `json:"fileId"`
	} `json:"sourceData"`
}

// importJob is one import and its progress.
type importJob struct {
	id        int64
	name      string
	state     string
	createdAt time.Time
	updatedAt time.Time
	request   json.RawMessage
	files     []*importFile
	counters  map[string]int
	errors    []importErrorWire
	written   map[int64]bool
	cancel    bool
}

type importWire struct {
	ID                  string          `json:"id"`
	State               string          `json:"state"`
	CreatedAt           string          `json:"createdAt"`
	UpdatedAt           string          `json:"updatedAt"`
	ImportName          string          `json:"importName,omitempty"`
	ImportSource        string          `json:"importSource"`
	ImportRequestJSON   json.RawMessage `json:"importRequestJson,omitempty"`
	MappedObjectTypeIDs []string        `json:"mappedObjectTypeIds"`
	OptOutImport        bool            `json:"optOutImport"`
	Metadata            struct {
		Counters    map[string]int `json:"counters"`
		FileIDs     []string       `json:"fileIds"`
		ObjectLists []struct{}     `json:"objectLists"`
	} `json:"metadata"`
}

func (j *importJob) wire() importWire {
	o := importWire{
		ID: strconv.FormatInt(j.id, 10), State: j.state, CreatedAt: formatTime(j.createdAt), UpdatedAt: formatTime(j.updatedAt),
		ImportName: j.name, ImportSource: "API", ImportRequestJSON: j.request, MappedObjectTypeIDs: []string{},
	}
	o.Metadata.Counters = map[string]int{}
	for k, v := range j.counters {
		o.Metadata.Counters[k] = v
	}
	o.Metadata.FileIDs = []string{}
	o.Metadata.ObjectLists = []struct{}{}
	for _, f := range j.files {
		o.Metadata.FileIDs = append(o.Metadata.FileIDs, strconv.FormatInt(f.fileID, 10))
		if !slices.Contains(o.MappedObjectTypeIDs, f.kind.typeID) {
			o.MappedObjectTypeIDs = append(o.MappedObjectTypeIDs, f.kind.typeID)
		}
	}
	return o
}

// readImportRequest extracts the importRequest JSON and the files from a
// multipart body. importRequest may be a plain field or a file part.
func readImportRequest(r *http.Request) ([]byte, []*multipart.FileHeader, *apiError) {
	if !strings.HasPrefix(r.Header.Get("Content-Type"), "multipart/form-data") {
		return nil, nil, newAPIError(http.StatusUnsupportedMediaType, "VALIDATION_ERROR", "Imports must be sent as multipart/form-data with an importRequest part and one or more files parts.")
	}
	r.Body = http.MaxBytesReader(nil, r.Body, maxImportBytes)
	if err := r.ParseMultipartForm(32 << 20); err != nil {
		return nil, nil, validationError("Could not read the multipart body: %v", err)
	}
	form := r.MultipartForm
	var reqJSON []byte
	if v := form.Value["importRequest"]; len(v) > 0 {
		reqJSON = []byte(v[0])
	} else if fh := form.File["importRequest"]; len(fh) > 0 {
		f, err := fh[0].Open()
		if err != nil {
			return nil, nil, validationError("Could not read the importRequest part: %v", err)
		}
		reqJSON, err = io.ReadAll(f)
		_ = f.Close()
		if err != nil {
			return nil, nil, validationError("Could not read the importRequest part: %v", err)
		}
	}
	if len(bytes.TrimSpace(reqJSON)) == 0 {
		return nil, nil, validationError("The importRequest part is missing.")
	}
	files := form.File["files"]
	if len(files) == 0 {
		return nil, nil, validationError("The files part is missing: attach the CSV file(s) as files.")
	}
	return reqJSON, files, nil
}

// planImport validates the import request against the portal's schema.
func (p *Portal) planImport(req importRequest, uploads []*multipart.FileHeader) ([]*importFile, *apiError) {
	if len(req.Files) == 0 {
		return nil, validationError("importRequest.files must describe at least one file")
	}
	if len(req.Files) != len(uploads) {
		return nil, validationError("importRequest.files describes %d file(s) but %d were uploaded", len(req.Files), len(uploads))
	}
	var out []*importFile
	for fi, spec := range req.Files {
		where := fmt.Sprintf("importRequest.files[%d]", fi)
		up := uploads[fi]
		for _, u := range uploads {
			if u.Filename == spec.FileName {
				up = u
			}
		}
		if f := strings.ToUpper(spec.FileFormat); f != "" && f != "CSV" {
			return nil, validationError("%s.fileFormat %q is not supported by the sandbox (use CSV)", where, spec.FileFormat)
		}
		mappings := spec.FileImportPage.ColumnMappings
		if len(mappings) == 0 {
			return nil, validationError("%s.fileImportPage.columnMappings must map at least one column", where)
		}
		file := &importFile{spec: spec, idCol: -1}
		for ci, m := range mappings {
			mwhere := fmt.Sprintf("%s.fileImportPage.columnMappings[%d]", where, ci)
			if m.ToColumnObjectTypeID != "" || m.idType() == "ASSOCIATION_KEYS" {
				return nil, validationError("%s: association columns are not supported by the sandbox", mwhere)
			}
			k, ok := p.s.kinds.lookup(m.ColumnObjectTypeID)
			if !ok {
				return nil, validationError("%s.columnObjectTypeId %q is not a known object type", mwhere, m.ColumnObjectTypeID)
			}
			if file.kind != nil && file.kind != k {
				return nil, validationError("%s: a file may import one object type; found %s and %s", mwhere, file.kind.typeID, k.typeID)
			}
			file.kind = k
			switch m.idType() {
			case "HUBSPOT_OBJECT_ID":
				if m.PropertyName != "" && m.PropertyName != "hs_object_id" {
					return nil, validationError("%s: a HUBSPOT_OBJECT_ID column maps to hs_object_id, not %q", mwhere, m.PropertyName)
				}
				if file.idCol >= 0 {
					return nil, validationError("%s: a file may have one id column", mwhere)
				}
				file.idCol, file.idType, file.idProp = ci, "HUBSPOT_OBJECT_ID", "hs_object_id"
				continue
			case "HUBSPOT_ALTERNATE_ID":
				alt := m.PropertyName
				okAlt := (k.name == Contacts && alt == "email") || (k.name == Companies && alt == "domain") || slices.Contains(p.uniqueProps(k), alt)
				if !okAlt {
					return nil, validationError("%s: %q cannot be an alternate id of %s (use email for contacts, domain for companies, or a unique value property)", mwhere, alt, k.name)
				}
				if file.idCol >= 0 {
					return nil, validationError("%s: a file may have one id column", mwhere)
				}
				file.idCol, file.idType, file.idProp = ci, "HUBSPOT_ALTERNATE_ID", alt
			case "":
			default:
				return nil, validationError("%s.columnType %q is not supported (use HUBSPOT_OBJECT_ID or HUBSPOT_ALTERNATE_ID)", mwhere, m.idType())
			}
			if m.PropertyName == "" {
				continue // unmapped column
			}
			def, ok := p.props[k.name].get(m.PropertyName)
			if !ok {
				return nil, validationError("%s: property %q does not exist for %s", mwhere, m.PropertyName, k.name).withContext("propertyName", m.PropertyName)
			}
			if def.ReadOnlyValue {
				return nil, validationError("%s: property %q is read-only", mwhere, m.PropertyName).withContext("propertyName", m.PropertyName)
			}
			file.columns = append(file.columns, importColumn{index: ci, def: def})
		}
		op := "UPSERT"
		if v, ok := req.ImportOperations[file.kind.typeID]; ok {
			op = strings.ToUpper(v)
		} else if v, ok := req.ImportOperations[file.kind.name]; ok {
			op = strings.ToUpper(v)
		}
		switch op {
		case "CREATE", "UPSERT":
		case "UPDATE":
			if file.idCol < 0 {
				return nil, validationError("%s: an UPDATE import needs a HUBSPOT_OBJECT_ID or HUBSPOT_ALTERNATE_ID column", where)
			}
		default:
			return nil, validationError("importOperations[%s] %q is invalid (want CREATE, UPDATE or UPSERT)", file.kind.typeID, op)
		}
		file.operation = op
		f, err := up.Open()
		if err != nil {
			return nil, validationError("%s: could not read uploaded file: %v", where, err)
		}
		file.data, err = io.ReadAll(f)
		_ = f.Close()
		if err != nil {
			return nil, validationError("%s: could not read uploaded file: %v", where, err)
		}
		out = append(out, file)
	}
	return out, nil
}

// POST /crm/v3/imports
func (s *Server) startImport(c *call, w http.ResponseWriter, r *http.Request) {
	reqJSON, uploads, aerr := readImportRequest(r)
	if aerr != nil {
		writeError(w, aerr)
		return
	}
	var req importRequest
	if err := json.Unmarshal(reqJSON, &req); err != nil {
		writeError(w, validationError("Invalid importRequest JSON: %v", err))
		return
	}
	var reqObj json.RawMessage
	if json.Valid(reqJSON) && bytes.HasPrefix(bytes.TrimSpace(reqJSON), []byte("{")) {
		reqObj = json.RawMessage(reqJSON)
	}
	p := c.p
	p.mu.Lock()
	files, aerr := p.planImport(req, uploads)
	if aerr != nil {
		p.mu.Unlock()
		writeError(w, aerr)
		return
	}
	now := s.now()
	p.nextIID++
	job := &importJob{id: p.nextIID, name: req.Name, state: ImportStarted, createdAt: now, updatedAt: now, request: reqObj, files: files, counters: map[string]int{}, written: map[int64]bool{}}
	rows := 0
	for i, f := range files {
		f.fileID = job.id*10 + int64(i)
		lines := bytes.Count(f.data, []byte("\n"))
		if len(f.data) > 0 && f.data[len(f.data)-1] != '\n' {
			lines++
		}
		if f.spec.FileImportPage.HasHeader && lines > 0 {
			lines--
		}
		rows += lines
	}
	p.imports[job.id] = job
	out := job.wire()
	p.mu.Unlock()
	p.stats.importStarted(rows)

	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.runImport(s.ctx, p, job, req.DateFormat)
	}()
	writeJSON(w, http.StatusOK, out)
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// runImport processes an import in the background: STARTED → PROCESSING →
// DONE (or FAILED for unreadable files, CANCELED when canceled).
func (s *Server) runImport(ctx context.Context, p *Portal, job *importJob, dateFormat string) {
	if !sleepCtx(ctx, s.opts.ImportDelay) {
		return
	}
	p.mu.Lock()
	if job.cancel {
		p.mu.Unlock()
		return
	}
	job.state, job.updatedAt = ImportProcessing, s.now()
	p.mu.Unlock()

	failed := false
	for _, f := range job.files {
		if err := s.importFile(ctx, p, job, f, dateFormat); err != nil {
			if errors.Is(err, errImportCanceled) || ctx.Err() != nil {
				return
			}
			s.log.Info("hubspottest: import failed", "importId", job.id, "err", err)
			failed = true
			break
		}
	}
	if !sleepCtx(ctx, s.opts.ImportDelay) {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if job.cancel {
		return
	}
	job.state = ImportDone
	if failed {
		job.state = ImportFailed
	}
	job.counters["UNIQUE_OBJECTS_WRITTEN"] = len(job.written)
	job.updatedAt = s.now()
}

var errImportCanceled = errors.New("import canceled")

var dateParts = regexp.MustCompile(`^(\d{1,4})[/.\-](\d{1,2})[/.\-](\d{1,4})$`)

// importDate converts a date cell written in the import's dateFormat
// (MONTH_DAY_YEAR by default) to YYYY-MM-DD; other forms pass through.
func importDate(v, format string) string {
	m := dateParts.FindStringSubmatch(strings.TrimSpace(v))
	if m == nil {
		return v
	}
	var y, mo, d string
	switch strings.ToUpper(format) {
	case "YEAR_MONTH_DAY":
		y, mo, d = m[1], m[2], m[3]
	case "DAY_MONTH_YEAR":
		d, mo, y = m[1], m[2], m[3]
	default:
		mo, d, y = m[1], m[2], m[3]
	}
	yi, _ := strconv.Atoi(y)
	mi, _ := strconv.Atoi(mo)
	di, _ := strconv.Atoi(d)
	if len(y) == 2 {
		yi += 2000
	}
	return fmt.Sprintf("%04d-%02d-%02d", yi, mi, di)
}

// importErrorType maps a property validation code to PublicImportError.errorType.
func importErrorType(code string) string {
	switch code {
	case "INVALID_FLOAT":
		return "COULD_NOT_PARSE_NUMBER"
	case "INVALID_DATE", "INVALID_DATETIME":
		return "COULD_NOT_PARSE_DATE"
	case "INVALID_OPTION":
		return "INVALID_ENUMERATION_OPTION"
	case "INVALID_EMAIL":
		return "INVALID_EMAIL"
	case "INVALID_OWNER_ID":
		return "COULD_NOT_FIND_OWNER"
	}
	return "INVALID_PROPERTY_VALUE_FORMAT"
}

var domainRE = regexp.MustCompile(`^([a-z0-9]([a-z0-9\-]*[a-z0-9])?\.)+[a-z]{2,}$`)

func (s *Server) importFile(ctx context.Context, p *Portal, job *importJob, f *importFile, dateFormat string) error {
	if f.spec.DateFormat != "" {
		dateFormat = f.spec.DateFormat
	}
	rd := csv.NewReader(bytes.NewReader(f.data))
	rd.FieldsPerRecord = -1
	rd.ReuseRecord = false
	line := 0
	if f.spec.FileImportPage.HasHeader {
		if _, err := rd.Read(); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return fmt.Errorf("read header of %s: %w", f.spec.FileName, err)
		}
		line++
	}
	ncols := len(f.spec.FileImportPage.ColumnMappings)
	for {
		var rows [][]string
		var lines []int
		for len(rows) < importChunk {
			rec, err := rd.Read()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return fmt.Errorf("parse %s: %w", f.spec.FileName, err)
			}
			line++
			rows = append(rows, rec)
			lines = append(lines, line)
		}
		if len(rows) == 0 {
			return nil
		}
		ch := &changes{}
		p.mu.Lock()
		if job.cancel {
			p.mu.Unlock()
			return errImportCanceled
		}
		for i, row := range rows {
			if job.counters["TOTAL_ROWS"] >= maxImportRows {
				break
			}
			p.importRow(job, f, row, lines[i], ncols, dateFormat, ch)
		}
		job.updatedAt = s.now()
		p.mu.Unlock()
		s.publish(p, ch)
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
}

// importRow applies one CSV row; the portal lock is held.
func (p *Portal) importRow(job *importJob, f *importFile, row []string, lineNumber, ncols int, dateFormat string, ch *changes) {
	k := f.kind
	st := p.stores[k.name]
	now := p.s.now()
	src := source{change: "IMPORT", id: strconv.FormatInt(job.id, 10)}
	job.counters["TOTAL_ROWS"]++
	fail := func(errType, msg, value string, col int) {
		e := importErrorWire{
			ID: strconv.Itoa(len(job.errors) + 1), CreatedAt: now.UnixMilli(), ErrorType: errType, ErrorMessage: msg,
			InvalidValue: value, KnownColumnNumber: col, ObjectType: k.importObjType, ObjectTypeID: k.typeID,
		}
		e.SourceData.LineNumber = lineNumber
		e.SourceData.RowData = slices.Clone(row)
		e.SourceData.AdditionalRowData = []string{}
		e.SourceData.FileID = f.fileID
		job.errors = append(job.errors, e)
	}
	if len(row) != ncols {
		fail("INCORRECT_NUMBER_OF_COLUMNS", fmt.Sprintf("Row has %d columns; the mapping has %d", len(row), ncols), "", 0)
		return
	}

	vals := map[string]string{}
	for _, col := range f.columns {
		raw := strings.TrimSpace(row[col.index])
		if raw == "" {
			continue // imports never clear values
		}
		if col.def.Type == "date" || col.def.Type == "datetime" {
			raw = importDate(raw, dateFormat)
		}
		v, issue := p.normalizeValue(k, col.def, raw)
		if issue != nil {
			fail(importErrorType(issue.code), issue.message, raw, col.index+1)
			continue
		}
		vals[col.def.Name] = v
	}

	// Find the existing record, if the file has an id column.
	var rec *record
	if f.idCol >= 0 {
		raw := strings.TrimSpace(row[f.idCol])
		switch {
		case raw == "" && f.operation == "UPDATE":
			fail("INVALID_OBJECT_ID", "The id column is empty", raw, f.idCol+1)
			return
		case raw == "":
		case f.idType == "HUBSPOT_OBJECT_ID":
			id, ok := parseID(raw)
			if !ok {
				fail("INVALID_RECORD_ID", fmt.Sprintf("%q is not a valid record ID", raw), raw, f.idCol+1)
				return
			}
			r, live := st.live(id)
			if !live {
				fail("INVALID_OBJECT_ID", fmt.Sprintf("No %s with record ID %s exists", strings.ToLower(k.label), raw), raw, f.idCol+1)
				return
			}
			rec = r
		case k.name == Companies && f.idProp == "domain":
			domain := strings.ToLower(raw)
			if !domainRE.MatchString(domain) {
				fail("INVALID_DOMAIN", fmt.Sprintf("%q is not a valid domain", raw), raw, f.idCol+1)
				return
			}
			var matches []*record
			for _, id := range st.ids {
				if r := st.recs[id]; !r.archived && strings.EqualFold(r.props["domain"], domain) {
					matches = append(matches, r)
				}
			}
			if len(matches) > 1 {
				fail("MULTIPLE_COMPANIES_WITH_THIS_DOMAIN", fmt.Sprintf("%d companies have the domain %s", len(matches), domain), raw, f.idCol+1)
				return
			}
			if len(matches) == 1 {
				rec = matches[0]
			}
			vals["domain"] = domain
		default:
			if def, ok := p.props[k.name].get(f.idProp); ok {
				v, issue := p.normalizeValue(k, def, raw)
				if issue != nil {
					fail(importErrorType(issue.code), issue.message, raw, f.idCol+1)
					return
				}
				raw = v
			}
			if id, ok := st.lookupUnique(f.idProp, raw); ok {
				rec, _ = st.live(id)
			}
			vals[f.idProp] = raw
		}
	}

	switch {
	case rec != nil && f.operation == "CREATE":
		fail("CREATE_ONLY_IMPORT", fmt.Sprintf("The %s already exists (record ID %d) and this import only creates records", strings.ToLower(k.label), rec.id), row[f.idCol], f.idCol+1)
		return
	case rec == nil && f.operation == "UPDATE":
		fail("UPDATE_ONLY_IMPORT", fmt.Sprintf("No %s matches %q and this import only updates records", strings.ToLower(k.label), row[f.idCol]), row[f.idCol], f.idCol+1)
		return
	}
	if rec == nil {
		if missing := missingRequired(k, vals); len(missing) > 0 {
			fail("MISSING_REQUIRED_PROPERTY", "Required properties are missing: "+strings.Join(missing, ", "), "", 0)
			return
		}
		if prop, existing, dup := p.conflict(st, vals, 0); dup {
			errType := "DUPLICATE_UNIQUE_PROPERTY_VALUE"
			if f.operation == "CREATE" && prop == f.idProp {
				errType = "CREATE_ONLY_IMPORT"
			}
			fail(errType, fmt.Sprintf("%s %q is already used by record %d", prop, vals[prop], existing), vals[prop], 0)
			return
		}
		r := p.createLocked(st, vals, now, src, ch)
		p.afterWriteLocked(k, r, vals, now, src, ch)
		job.counters["CREATED_OBJECTS"]++
		job.counters["PROPERTY_VALUES_EMITTED"] += len(vals)
		job.written[r.id] = true
		return
	}
	if prop, existing, dup := p.conflict(st, vals, rec.id); dup {
		fail("DUPLICATE_UNIQUE_PROPERTY_VALUE", fmt.Sprintf("%s %q is already used by record %d", prop, vals[prop], existing), vals[prop], 0)
		return
	}
	p.updateLocked(st, rec, vals, now, src, ch)
	p.afterWriteLocked(k, rec, vals, now, src, ch)
	job.counters["UPDATED_OBJECTS"]++
	job.counters["PROPERTY_VALUES_EMITTED"] += len(vals)
	job.written[rec.id] = true
}

func (p *Portal) importByID(raw string) (*importJob, *apiError) {
	id, ok := parseID(raw)
	j, found := p.imports[id]
	if !ok || !found {
		return nil, notFoundError("Import %s does not exist.", raw)
	}
	return j, nil
}

// GET /crm/v3/imports/{importId}
func (s *Server) getImport(c *call, w http.ResponseWriter, r *http.Request) {
	c.p.mu.Lock()
	defer c.p.mu.Unlock()
	j, aerr := c.p.importByID(r.PathValue("importId"))
	if aerr != nil {
		writeError(w, aerr)
		return
	}
	writeJSON(w, http.StatusOK, j.wire())
}

// GET /crm/v3/imports
func (s *Server) listImports(c *call, w http.ResponseWriter, r *http.Request) {
	limit, aerr := intParam(r, "limit", 100, 1, 1000)
	if aerr != nil {
		writeError(w, aerr)
		return
	}
	offset := 0
	if a := r.URL.Query().Get("after"); a != "" {
		n, err := strconv.Atoi(a)
		if err != nil || n < 0 {
			writeError(w, validationError("after: %q is not a valid paging cursor", a))
			return
		}
		offset = n
	}
	c.p.mu.Lock()
	jobs := make([]*importJob, 0, len(c.p.imports))
	for _, j := range c.p.imports {
		jobs = append(jobs, j)
	}
	slices.SortFunc(jobs, func(a, b *importJob) int { return int(b.id - a.id) })
	results := []importWire{}
	next := ""
	for i := offset; i < len(jobs); i++ {
		if len(results) == limit {
			next = strconv.Itoa(i)
			break
		}
		results = append(results, jobs[i].wire())
	}
	c.p.mu.Unlock()
	writeJSON(w, http.StatusOK, struct {
		Results []importWire `json:"results"`
		Paging  *paging      `json:"paging,omitempty"`
	}{results, pagingAfter(next)})
}

// POST /crm/v3/imports/{importId}/cancel
func (s *Server) cancelImport(c *call, w http.ResponseWriter, r *http.Request) {
	started := s.now()
	c.p.mu.Lock()
	j, aerr := c.p.importByID(r.PathValue("importId"))
	if aerr != nil {
		c.p.mu.Unlock()
		writeError(w, aerr)
		return
	}
	if j.state == ImportStarted || j.state == ImportProcessing {
		j.cancel = true
		j.state = ImportCanceled
		j.updatedAt = s.now()
	}
	c.p.mu.Unlock()
	writeJSON(w, http.StatusOK, struct {
		Status      string `json:"status"`
		StartedAt   string `json:"startedAt"`
		CompletedAt string `json:"completedAt"`
	}{"COMPLETE", formatTime(started), formatTime(s.now())})
}

// GET /crm/v3/imports/{importId}/errors
func (s *Server) importErrors(c *call, w http.ResponseWriter, r *http.Request) {
	limit, aerr := intParam(r, "limit", 100, 1, 1000)
	if aerr != nil {
		writeError(w, aerr)
		return
	}
	offset := 0
	if a := r.URL.Query().Get("after"); a != "" {
		n, err := strconv.Atoi(a)
		if err != nil || n < 0 {
			writeError(w, validationError("after: %q is not a valid paging cursor", a))
			return
		}
		offset = n
	}
	c.p.mu.Lock()
	j, aerr := c.p.importByID(r.PathValue("importId"))
	if aerr != nil {
		c.p.mu.Unlock()
		writeError(w, aerr)
		return
	}
	end := min(offset+limit, len(j.errors))
	results := []importErrorWire{}
	if offset < end {
		results = append(results, j.errors[offset:end]...)
	}
	total := len(j.errors)
	c.p.mu.Unlock()
	next := ""
	if end < total {
		next = strconv.Itoa(end)
	}
	writeJSON(w, http.StatusOK, struct {
		Results []importErrorWire `json:"results"`
		Paging  *paging           `json:"paging,omitempty"`
	}{results, pagingAfter(next)})
}
