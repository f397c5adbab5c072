package pipeline

import (
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	eventsv1 "github.com/signalbridge/signalbridge/libs/gen/signalbridge/events/v1"
	signalsv1 "github.com/signalbridge/signalbridge/libs/gen/signalbridge/signals/v1"
)

// checkSplice is the property the pipeline relies on: for any SignalReceived encoding
// that proto.Unmarshal accepts, the SignalMatched built around its decoded Signal and
// encoded with the received Signal bytes decodes to the same message as the one
// encoded whole.
func checkSplice(t *testing.T, data []byte) {
	t.Helper()
	var sr signalsv1.SignalReceived
	if err := proto.Unmarshal(data, &sr); err != nil {
		return // the pipeline dead-letters these before matching
	}
	ev := &signalsv1.SignalMatched{
		Meta:    &eventsv1.EventMeta{EventId: "match:e1", PortalId: "42", CausationId: "e1", PublishedAt: timestamppb.New(fixedTime)},
		Signal:  sr.GetSignal(),
		Company: &signalsv1.CompanyMatch{CompanyId: "7", Evidence: &signalsv1.MatchEvidence{MatchedDomain: "acme.com", CandidateIds: []string{"7", "9"}}},
	}
	raw := signalBytes(data)
	got, err := encodeMatched(ev, raw)
	if err != nil {
		t.Fatalf("encodeMatched: %v", err)
	}
	if raw != nil && cap(got) != len(got) {
		t.Errorf("spliced encoding: %d bytes in a buffer of %d: the size computed up front is off", len(got), cap(got))
	}
	if ev.Signal != sr.GetSignal() {
		t.Fatal("encodeMatched left ev without its Signal")
	}
	var back signalsv1.SignalMatched
	if err := proto.Unmarshal(got, &back); err != nil {
		t.Fatalf("spliced SignalMatched does not decode: %v (signal bytes %x)", err, raw)
	}
	if !proto.Equal(&back, ev) {
		t.Fatalf("spliced SignalMatched decodes to\n%v\nwant\n%v\n(input %x, signal bytes %x)", &back, ev, data, raw)
	}
}

var fixedTime = time.Date(2026, 12, 7, 9, 30, 0, 123_000_000, time.UTC)

func sampleSignal(domain, email, attr string) *signalsv1.SignalReceived {
	return &signalsv1.SignalReceived{
		Meta: &eventsv1.EventMeta{EventId: "e1", PortalId: "42"},
		Signal: &signalsv1.Signal{
			Id: "s1", Type: "page_view", Strength: signalsv1.Strength_STRENGTH_HIGH,
			Account:    &signalsv1.Account{Domain: domain, Aliases: []string{"www." + domain}, Segments: []string{"ent"}},
			Visitor:    &signalsv1.Visitor{Email: email, FirstName: "Ada"},
			OccurredAt: timestamppb.New(fixedTime),
			Attributes: map[string]string{attr: "v", "page": "/pricing"},
		},
		SubmittedBy: "bench",
	}
}

func TestSpliceSignal(t *testing.T) {
	det := proto.MarshalOptions{Deterministic: true} // attributes in one order in both
	whole, err := det.Marshal(sampleSignal("acme.com", "ada@acme.com", "utm"))
	if err != nil {
		t.Fatal(err)
	}
	sig, err := det.Marshal(sampleSignal("acme.com", "ada@acme.com", "utm").GetSignal())
	if err != nil {
		t.Fatal(err)
	}
	if got := signalBytes(whole); string(got) != string(sig) {
		t.Fatalf("signalBytes = %x, want the Signal's encoding %x", got, sig)
	}
	checkSplice(t, whole)

	// A Signal written twice is the merge of both: signalBytes declines, and the
	// SignalMatched is encoded whole.
	twice := protowire.AppendTag(append([]byte(nil), whole...), 2, protowire.BytesType)
	twice = protowire.AppendBytes(twice, []byte{0x12, 0x05, 'c', 'l', 'i', 'c', 'k'}) // type = "click"
	if signalBytes(twice) != nil {
		t.Fatal("signalBytes took one part of a Signal written twice")
	}
	checkSplice(t, twice)

	// Unknown fields inside the Signal travel with it.
	unknown := protowire.AppendTag(nil, 99, protowire.VarintType)
	unknown = protowire.AppendVarint(unknown, 7)
	withUnknown := protowire.AppendTag(nil, 1, protowire.BytesType)
	withUnknown = protowire.AppendBytes(withUnknown, []byte{0x0a, 0x02, 'e', '2'}) // meta.event_id
	withUnknown = protowire.AppendTag(withUnknown, 2, protowire.BytesType)
	withUnknown = protowire.AppendBytes(withUnknown, append(append([]byte(nil), sig...), unknown...))
	checkSplice(t, withUnknown)

	// Field 2 with another wire type is an unknown field of SignalReceived, not a Signal.
	wrongType := protowire.AppendTag(append([]byte(nil), whole...), 2, protowire.VarintType)
	wrongType = protowire.AppendVarint(wrongType, 1)
	checkSplice(t, wrongType)
}

func FuzzSpliceSignal(f *testing.F) {
	for _, s := range []*signalsv1.SignalReceived{
		sampleSignal("acme.com", "ada@acme.com", "utm"),
		sampleSignal("", "", ""),
		{Signal: &signalsv1.Signal{}},
		{},
	} {
		b, err := proto.Marshal(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(checkSplice)
}
