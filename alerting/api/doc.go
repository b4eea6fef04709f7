// Package api is the HTTP face of alerting: the rules, alerts, history,
// backtest, silences and delivery log of api.md "Alerting", and the
// Prometheus-shaped GET /api/v1/rules and GET /api/v1/alerts that
// Grafana's alert list reads. Errors are {"type":"error","message":...}
// with a 4xx naming the bad field for user input; one function maps
// errors to status codes.
package api
