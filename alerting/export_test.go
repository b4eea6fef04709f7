package alerting

// BacktestLines runs r's state machine over lines (one step per value) and
// returns the instances after the last step, for tests of templates.
func BacktestLines(r *Rule, lines []Line) ([]*Instance, error) {
	if err := r.Check(); err != nil {
		return nil, err
	}
	rs := newRuleState(r, "test")
	n := 0
	for _, l := range lines {
		n = max(n, len(l.Values))
	}
	for i := range n {
		t := lines[0].Start + int64(i)*lines[0].Step
		rs.eval(t, samplesAt(lines, t), nil, false)
	}
	var out []*Instance
	for _, in := range rs.instances {
		out = append(out, in)
	}
	return out, nil
}
