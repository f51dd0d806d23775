package testenv

import (
	"os/exec"
	"testing"
)

// recorder is a testing.TB that records how Missing ended it.
type recorder struct {
	testing.TB
	skipped, failed bool
	msg             string
}

func (r *recorder) Helper() {}
func (r *recorder) Skipf(format string, args ...any) {
	r.skipped = true
	r.msg = format
}
func (r *recorder) Fatalf(format string, args ...any) {
	r.failed = true
	r.msg = format
}

func TestMissingSkipsByHandAndFailsUnderCI(t *testing.T) {
	for _, c := range []struct {
		ci         string
		skip, fail bool
	}{{"", true, false}, {"false", true, false}, {"true", false, true}, {"1", false, true}} {
		t.Setenv("CI", c.ci)
		r := &recorder{TB: t}
		Program(r, "no-such-program-tlsring", "nothing")
		if r.skipped != c.skip || r.failed != c.fail {
			t.Errorf("CI=%q: skipped %v failed %v, want %v %v", c.ci, r.skipped, r.failed, c.skip, c.fail)
		}
	}
	t.Setenv("CI", "true")
	if _, err := exec.LookPath("sh"); err == nil {
		r := &recorder{TB: t}
		if p := Program(r, "sh", "dash"); p == "" || r.failed || r.skipped {
			t.Errorf("Program(sh) = %q, skipped %v failed %v", p, r.skipped, r.failed)
		}
	}
}
