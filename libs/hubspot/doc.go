// Package hubspot is a typed client for the HubSpot CRM APIs signalbridge
// uses, written by hand over net/http (with an otelhttp transport):
//
//   - CRM objects (contacts, companies, deals, tasks, notes): Get, List /
//     ListAll (cursor paging), Create / Update / Archive, BatchRead /
//     BatchCreate / BatchUpdate / BatchUpsert / BatchArchive (≤ 100 inputs,
//     the *All variants split larger slices), Search / SearchAll;
//   - Changes: an incremental change feed over search that neither loses nor
//     loops under the 10,000-result cap, identical-timestamp storms and
//     search-index lag, with a resumable Cursor;
//   - properties and property groups, owners, lists v3 (MANUAL lists and
//     their memberships), associations v4 (default and labelled, batch create,
//     read, archive) and CRM imports (multipart upload, status, row errors);
//   - webhook signature verification (v1, v2, v3) and payload types.
//
// # Versions
//
// Config.APIVersion "v3" (default) uses today's numbered paths
// (/crm/v3/objects/..., /crm/v4/associations/...); a date version such as
// "2026-09" switches every call to the date-versioned paths
// (/crm/objects/2026-09/..., /crm/associations/2026-09/...). The request and
// response shapes are the same.
//
// # Errors and retries
//
// Non-2xx responses are *Error values (errors.As) carrying HubSpot's status,
// category, message, correlation id, policy name and per-field details; see
// IsRateLimited, IsNotFound, IsConflict and IsValidation. Batch calls put an
// objectWriteTraceId on every input, so a 207 Multi-Status maps each failure
// back to its input index (BatchResult.Errors, BatchResult.Failed).
//
// A call is retried at most Config.MaxRetries times, never past its context:
//
//   - 429 TEN_SECONDLY_ROLLING waits out the window
//     (X-HubSpot-RateLimit-Interval-Milliseconds) — through the quota governor
//     when there is one, so every replica pauses;
//   - 429 on search (the secondly limit) waits one second;
//   - 429 DAILY is not retried: the error wraps ErrDailyLimit and the governor
//     stops the portal's bulk work until the daily reset;
//   - 5xx, 423, 477 and network errors back off exponentially with jitter
//     (creates only when Config.RetryNonIdempotent allows it, since a retried
//     create can duplicate records);
//   - other 4xx (validation, auth, not found, conflict) are returned at once.
//
// # Quota
//
// With Config.Governor (package quota) every request first waits for the
// portal's shared budget, at the priority class carried by the context
// (WithClass; default Config.DefaultClass = Bulk), and every response's
// X-HubSpot-RateLimit-* headers correct the governor.
package hubspot
