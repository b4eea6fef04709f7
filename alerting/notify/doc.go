// Package notify sends alerts to people: it routes the alerts of
// alerting.Manager through a route tree into aggregation groups, waits,
// batches and repeats as Alertmanager does (group_by, group_wait,
// group_interval, repeat_interval), and delivers each group's notification
// to the receiver's integrations: a webhook (Alertmanager's webhook
// payload version 4), Slack (incoming webhook) and PagerDuty (Events API
// v2), with retries and backoff on network errors and 5xx answers.
//
// What was notified is remembered per group and integration in a KV store
// (Alertmanager's notification log), so a restart does not page again for
// alerts already notified, and a resolution found after a restart is still
// sent. Silences (alerting.Silences) mute alerts at flush time; every
// notification, sent, failed or muted, goes to the delivery log.
//
// Pusher is the other way out: it pushes every active alert to the
// /api/v2/alerts endpoint of Alertmanagers every minute, with endsAt as a
// lease, so a real Alertmanager can do the routing.
package notify
