package fanout

// Exported for the benchmarks of package fanout_test.
var (
	AppendSeriesSetForBench = appendSeriesSet
	DecodeSeriesSetForBench = decodeSeriesSet
)
