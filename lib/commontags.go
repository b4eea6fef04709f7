package lib

import (
	"os"
	"strings"
)

// envTags maps environment variables to common tags, first match wins:
// Netflix's and EC2's conventions (as Spectator reads them), Titus, and
// OpenTelemetry's service name for the app.
var envTags = []struct {
	tag  string
	vars []string
}{
	{"nf.app", []string{"NETFLIX_APP", "OTEL_SERVICE_NAME"}},
	{"nf.cluster", []string{"NETFLIX_CLUSTER"}},
	{"nf.asg", []string{"NETFLIX_AUTO_SCALE_GROUP"}},
	{"nf.stack", []string{"NETFLIX_STACK"}},
	{"nf.account", []string{"NETFLIX_ACCOUNT_ID", "EC2_OWNER_ID"}},
	{"nf.region", []string{"NETFLIX_REGION", "EC2_REGION", "AWS_REGION"}},
	{"nf.zone", []string{"NETFLIX_ZONE", "EC2_AVAILABILITY_ZONE"}},
	{"nf.node", []string{"NETFLIX_INSTANCE_ID", "TITUS_TASK_INSTANCE_ID", "EC2_INSTANCE_ID", "HOSTNAME"}},
	{"nf.vmtype", []string{"EC2_INSTANCE_TYPE"}},
	{"nf.task", []string{"TITUS_TASK_ID"}},
}

// EnvTags returns the common tags found in the environment: nf.app from
// NETFLIX_APP or OTEL_SERVICE_NAME, nf.node from NETFLIX_INSTANCE_ID,
// EC2_INSTANCE_ID or HOSTNAME (else the host name), nf.region, nf.zone,
// nf.cluster, nf.asg, nf.stack, nf.account, nf.vmtype and nf.task from
// their NETFLIX_*, EC2_* and TITUS_* variables.
func EnvTags() map[string]string {
	out := map[string]string{}
	for _, t := range envTags {
		for _, v := range t.vars {
			if s := strings.TrimSpace(os.Getenv(v)); s != "" {
				out[t.tag] = s
				break
			}
		}
	}
	if _, ok := out["nf.node"]; !ok {
		if h, err := os.Hostname(); err == nil && h != "" {
			out["nf.node"] = h
		}
	}
	return out
}
