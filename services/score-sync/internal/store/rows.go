package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"time"

	scoresv1 "github.com/signalbridge/signalbridge/libs/gen/signalbridge/scores/v1"
)

// Names of the two tables.
const (
	TableScores = "scores"
	TableSent   = "sent"
)

// Values are the five synced values of one account, compactly: scores in hundredths (0..10000)
// and the enums as their proto numbers. Scores are synced with two decimals.
type Values struct {
	IntentScore    uint16
	ICPFitScore    uint16
	IntentStrength scoresv1.IntentStrength
	IntentTrend    scoresv1.IntentTrend
	ICPFitGrade    scoresv1.FitGrade
}

// Pack returns v as one comparable word.
func (v Values) Pack() uint64 {
	return uint64(v.IntentScore)<<48 | uint64(v.ICPFitScore)<<32 |
		uint64(uint8(v.IntentStrength))<<16 | uint64(uint8(v.IntentTrend))<<8 | uint64(uint8(v.ICPFitGrade))
}

// UnpackValues is the inverse of Pack.
func UnpackValues(p uint64) Values {
	return Values{
		IntentScore:    uint16(p >> 48),
		ICPFitScore:    uint16(p >> 32),
		IntentStrength: scoresv1.IntentStrength(uint8(p >> 16)),
		IntentTrend:    scoresv1.IntentTrend(uint8(p >> 8)),
		ICPFitGrade:    scoresv1.FitGrade(uint8(p)),
	}
}

// Hundredths converts a 0..100 score to hundredths, rounding half away from zero.
func Hundredths(v float64) (uint16, error) {
	if math.IsNaN(v) || v < 0 || v > 100 {
		return 0, fmt.Errorf("score %v is outside 0..100", v)
	}
	return uint16(math.Round(v * 100)), nil
}

// ValuesOf converts a proto AccountScore, checking ranges and enums.
func ValuesOf(s *scoresv1.AccountScore) (Values, error) {
	var v Values
	var err error
	if v.IntentScore, err = Hundredths(s.GetIntentScore()); err != nil {
		return v, fmt.Errorf("intent_score: %w", err)
	}
	if v.ICPFitScore, err = Hundredths(s.GetIcpFitScore()); err != nil {
		return v, fmt.Errorf("icp_fit_score: %w", err)
	}
	v.IntentStrength, v.IntentTrend, v.ICPFitGrade = s.GetIntentStrength(), s.GetIntentTrend(), s.GetIcpFitGrade()
	if _, ok := scoresv1.IntentStrength_name[int32(v.IntentStrength)]; !ok || v.IntentStrength > 255 {
		return v, fmt.Errorf("intent_strength: unknown value %d", v.IntentStrength)
	}
	if _, ok := scoresv1.IntentTrend_name[int32(v.IntentTrend)]; !ok || v.IntentTrend > 255 {
		return v, fmt.Errorf("intent_trend: unknown value %d", v.IntentTrend)
	}
	if _, ok := scoresv1.FitGrade_name[int32(v.ICPFitGrade)]; !ok || v.ICPFitGrade > 255 {
		return v, fmt.Errorf("icp_fit_grade: unknown value %d", v.ICPFitGrade)
	}
	return v, nil
}

// ScoreRow is the latest score of one account: the row of the scores table (key = domain,
// Ver = scored_at in Unix milliseconds).
type ScoreRow struct {
	Domain   string
	Aliases  []string
	ScoredAt time.Time
	Values   Values
}

// Row encodes the score row: value = 8-byte packed Values, uvarint alias count, then each alias
// as uvarint length and bytes.
func (s ScoreRow) Row() (Row, error) {
	if s.Domain == "" {
		return Row{}, errors.New("store: score row without a domain")
	}
	ms := s.ScoredAt.UnixMilli()
	if ms < 0 {
		return Row{}, fmt.Errorf("store: score of %s: scored_at %s is before 1970", s.Domain, s.ScoredAt)
	}
	val := binary.BigEndian.AppendUint64(make([]byte, 0, 9+16*len(s.Aliases)), s.Values.Pack())
	val = binary.AppendUvarint(val, uint64(len(s.Aliases)))
	for _, a := range s.Aliases {
		val = binary.AppendUvarint(val, uint64(len(a)))
		val = append(val, a...)
	}
	return Row{Key: []byte(s.Domain), Ver: uint64(ms), Val: val}, nil
}

// DecodeScoreValue splits a scores-table value into the packed Values and the raw alias
// section (see AliasList); it does not allocate.
func DecodeScoreValue(val []byte) (packed uint64, aliases []byte, err error) {
	if len(val) < 9 {
		return 0, nil, fmt.Errorf("%w: score value of %d bytes", ErrCorrupt, len(val))
	}
	return binary.BigEndian.Uint64(val), val[8:], nil
}

// AliasList decodes the alias section returned by DecodeScoreValue.
func AliasList(section []byte) ([]string, error) {
	n, k := binary.Uvarint(section)
	if k <= 0 || n > 1024 {
		return nil, fmt.Errorf("%w: alias count", ErrCorrupt)
	}
	section = section[k:]
	out := make([]string, 0, n)
	for range n {
		l, k := binary.Uvarint(section)
		if k <= 0 || uint64(len(section)-k) < l {
			return nil, fmt.Errorf("%w: alias length", ErrCorrupt)
		}
		out = append(out, string(section[k:k+int(l)]))
		section = section[k+int(l):]
	}
	return out, nil
}

// SentRow is what HubSpot last confirmed for one company: the row of the sent table (key =
// 8-byte big-endian company id, Ver = confirmation time in Unix nanoseconds). Fingerprint
// identifies the property mapping the values were written with; rows of another mapping do
// not count as sent.
type SentRow struct {
	CompanyID   uint64
	Fingerprint uint32
	Packed      uint64
	ConfirmedAt time.Time
}

// Row encodes the sent row: value = 4-byte fingerprint, 8-byte packed Values.
func (s SentRow) Row() Row {
	key := binary.BigEndian.AppendUint64(make([]byte, 0, 8), s.CompanyID)
	val := binary.BigEndian.AppendUint32(make([]byte, 0, 12), s.Fingerprint)
	val = binary.BigEndian.AppendUint64(val, s.Packed)
	return Row{Key: key, Ver: uint64(s.ConfirmedAt.UnixNano()), Val: val}
}

// DecodeSent decodes a sent-table row.
func DecodeSent(r Row) (SentRow, error) {
	if len(r.Key) != 8 || len(r.Val) != 12 {
		return SentRow{}, fmt.Errorf("%w: sent row with a %d-byte key and a %d-byte value", ErrCorrupt, len(r.Key), len(r.Val))
	}
	return SentRow{
		CompanyID:   binary.BigEndian.Uint64(r.Key),
		Fingerprint: binary.BigEndian.Uint32(r.Val),
		Packed:      binary.BigEndian.Uint64(r.Val[4:]),
		ConfirmedAt: time.Unix(0, int64(r.Ver)),
	}, nil
}
