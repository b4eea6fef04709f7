package api

import (
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/sextant-dev/sextant/alerting"
)

func (a *API) silences(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, a.opts.Silences.List())
}

// decodeSilence reads an Alertmanager API v2 silence; preview fills in
// what a draft may leave out.
func (a *API) decodeSilence(w http.ResponseWriter, r *http.Request, preview bool) (*alerting.Silence, error) {
	b, err := a.body(w, r)
	if err != nil {
		return nil, err
	}
	var s alerting.Silence
	if err := json.Unmarshal(b, &s); err != nil {
		var te *json.UnmarshalTypeError
		var pe *time.ParseError
		switch {
		case errors.As(err, &te):
			return nil, &badRequest{te.Field, "want " + te.Type.String()}
		case errors.As(err, &pe):
			return nil, &badRequest{"startsAt/endsAt", "want RFC 3339 times: " + err.Error()}
		}
		return nil, &badRequest{"body", "bad JSON: " + err.Error()}
	}
	if preview {
		now := a.opts.Now()
		if s.StartsAt.IsZero() {
			s.StartsAt = now
		}
		if s.EndsAt.IsZero() {
			s.EndsAt = s.StartsAt.Add(time.Hour)
		}
		if s.CreatedBy == "" {
			s.CreatedBy = "preview"
		}
	}
	if err := s.Compile(); err != nil {
		return nil, err
	}
	return &s, nil
}

func (a *API) postSilence(w http.ResponseWriter, r *http.Request) {
	s, err := a.decodeSilence(w, r, false)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	id, err := a.opts.Silences.Put(r.Context(), s)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"silenceID": id})
}

func (a *API) deleteSilence(w http.ResponseWriter, r *http.Request) {
	if err := a.opts.Silences.Expire(r.Context(), r.PathValue("id")); err != nil {
		a.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// previewNotification is a past notification a silence would have muted.
type previewNotification struct {
	At       time.Time                 `json:"at"`
	Receiver string                    `json:"receiver"`
	GroupKey string                    `json:"groupKey"`
	Status   string                    `json:"status"`
	Muted    []alerting.DeliveredAlert `json:"alerts"` // the alerts it matches
	// Whole is true when every alert of the notification matches, so it
	// would not have been sent at all.
	Whole bool `json:"whole"`
}

// preview lists the alerts a silence would mute now and the notifications
// of the last 7 days it would have muted.
func (a *API) preview(w http.ResponseWriter, r *http.Request) {
	s, err := a.decodeSilence(w, r, true)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	alerts := []alertJSON{}
	for _, al := range a.opts.Manager.Active() {
		if s.Matches(al.Labels) {
			alerts = append(alerts, alertJSON{Rule: al.Rule, Labels: al.Labels, Annotations: al.Annotations, State: al.State,
				ActiveAt: time.UnixMilli(al.ActiveAt).UTC(), Value: jsonFloat(al.Value)})
		}
	}
	notes := []previewNotification{}
	whole := 0
	if a.opts.Log != nil {
		ds, err := a.opts.Log.List(r.Context(), a.opts.Now().Add(-7*24*time.Hour), 0)
		if err != nil {
			a.writeError(w, r, err)
			return
		}
		for _, d := range ds {
			if d.Outcome != "sent" {
				continue
			}
			var matched []alerting.DeliveredAlert
			for _, al := range d.Alerts {
				if s.Matches(al.Labels) {
					matched = append(matched, al)
				}
			}
			if len(matched) == 0 {
				continue
			}
			pn := previewNotification{At: d.At, Receiver: d.Receiver, GroupKey: d.GroupKey, Status: d.Status, Muted: matched, Whole: len(matched) == len(d.Alerts)}
			if pn.Whole {
				whole++
			}
			notes = append(notes, pn)
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"matchers": s.String(), "alerts": alerts, "notifications": notes, "mutedNotifications": whole})
}
