// Table-driven tests of the damping logic, time passed in.

package membership

import (
	"errors"
	"slices"
	"testing"
	"time"
)

func TestDamper(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	type step struct {
		at                       float64  // seconds after t0
		source                   []string // nil: Advance instead of Observe
		members                  []string // the ring after the step; nil: unchanged
		joined, left, gone, back []string
		err                      error
		next                     float64 // next deadline, seconds after t0; 0: none
	}
	abc := []string{"a:1", "b:1", "c:1"}
	tests := []struct {
		name  string
		start []string
		grace time.Duration
		steps []step
	}{
		{"join applies at once", abc, 10 * time.Second, []step{
			{at: 1, source: []string{"a:1", "b:1", "c:1", "d:1"}, members: []string{"a:1", "b:1", "c:1", "d:1"}, joined: []string{"d:1"}},
		}},
		{"same list changes nothing", abc, 10 * time.Second, []step{
			{at: 1, source: abc},
		}},
		{"a member gone leaves after the grace period, not before", abc, 10 * time.Second, []step{
			{at: 1, source: []string{"a:1", "b:1"}, gone: []string{"c:1"}, next: 11},
			{at: 10.999, source: nil, next: 11},
			{at: 5, source: []string{"a:1", "b:1"}, next: 11},
			{at: 11, source: nil, members: []string{"a:1", "b:1"}, left: []string{"c:1"}},
		}},
		{"a flap within the grace period is damped", abc, 10 * time.Second, []step{
			{at: 1, source: []string{"a:1", "b:1"}, gone: []string{"c:1"}, next: 11},
			{at: 3, source: abc, back: []string{"c:1"}},
			{at: 4, source: []string{"a:1", "b:1"}, gone: []string{"c:1"}, next: 14},
			{at: 12, source: abc, back: []string{"c:1"}},
			{at: 30, source: nil},
		}},
		{"grace periods run per member", abc, 10 * time.Second, []step{
			{at: 1, source: []string{"a:1", "c:1"}, gone: []string{"b:1"}, next: 11},
			{at: 5, source: []string{"a:1"}, gone: []string{"c:1"}, next: 11},
			{at: 11, source: nil, members: []string{"a:1", "c:1"}, left: []string{"b:1"}, next: 15},
			{at: 16, source: []string{"a:1", "d:1"}, members: []string{"a:1", "d:1"}, joined: []string{"d:1"}, left: []string{"c:1"}},
		}},
		{"an empty list is refused", abc, 10 * time.Second, []step{
			{at: 1, source: []string{}, err: ErrEmpty},
			{at: 20, source: nil},
		}},
		{"a list without this member is refused", abc, 10 * time.Second, []step{
			{at: 1, source: []string{"b:1", "c:1"}, err: ErrSelfMissing},
		}},
		{"a refused list still lets grace periods end", abc, 10 * time.Second, []step{
			{at: 1, source: []string{"a:1", "b:1"}, gone: []string{"c:1"}, next: 11},
			{at: 12, source: []string{}, err: ErrEmpty, members: []string{"a:1", "b:1"}, left: []string{"c:1"}},
		}},
		{"grace 0 removes at once", abc, 0, []step{
			{at: 1, source: []string{"a:1", "b:1", "d:1"}, members: []string{"a:1", "b:1", "d:1"}, joined: []string{"d:1"}, left: []string{"c:1"}},
		}},
		{"a member gone then back after it left joins again", abc, 10 * time.Second, []step{
			{at: 1, source: []string{"a:1", "b:1"}, gone: []string{"c:1"}, next: 11},
			{at: 11, source: nil, members: []string{"a:1", "b:1"}, left: []string{"c:1"}},
			{at: 12, source: abc, members: abc, joined: []string{"c:1"}},
		}},
		{"self joins the ring it starts without", []string{"b:1"}, 10 * time.Second, []step{
			{at: 1, source: []string{"a:1", "b:1"}},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := NewDamper("a:1", tt.start, tt.grace)
			for i, s := range tt.steps {
				var c Change
				var err error
				if s.source == nil {
					c = d.Advance(at(s.at))
				} else {
					c, err = d.Observe(at(s.at), s.source)
				}
				if !errors.Is(err, s.err) {
					t.Fatalf("step %d: err %v, want %v", i, err, s.err)
				}
				check := func(what string, got, want []string) {
					t.Helper()
					if !slices.Equal(got, want) {
						t.Errorf("step %d: %s %v, want %v", i, what, got, want)
					}
				}
				check("members", c.Members, s.members)
				check("joined", c.Joined, s.joined)
				check("left", c.Left, s.left)
				check("gone", c.Gone, s.gone)
				check("back", c.Back, s.back)
				next, ok := d.NextDeadline()
				if s.next == 0 && ok {
					t.Errorf("step %d: next deadline %v, want none", i, next.Sub(t0))
				}
				if s.next != 0 && (!ok || !next.Equal(at(s.next))) {
					t.Errorf("step %d: next deadline %v (%v), want %vs", i, next.Sub(t0), ok, s.next)
				}
				if s.members != nil && !slices.Equal(d.Members(), s.members) {
					t.Errorf("step %d: Members() %v, want %v", i, d.Members(), s.members)
				}
			}
		})
	}
}

func TestDamperCounts(t *testing.T) {
	t0 := time.Now()
	d := NewDamper("a:1", []string{"a:1", "b:1", "c:1"}, time.Minute)
	if _, err := d.Observe(t0, []string{"a:1", "d:1"}); err != nil {
		t.Fatal(err)
	}
	if a, l := d.Counts(); a != 2 || l != 2 {
		t.Fatalf("Counts() = %d active, %d leaving; want 2, 2", a, l)
	}
}
