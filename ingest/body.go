package ingest

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// readBody reads a request body into buf, enforcing the size limits before
// and after decompression (413 either way). It handles the identity and
// gzip encodings; others are refused with 415, except those allow lists
// (snappy, whose framing the caller decodes itself).
func (h *Handler) readBody(w http.ResponseWriter, r *http.Request, buf *bytes.Buffer, allow ...string) (encoding string, err error) {
	if r.ContentLength > h.opts.MaxBodyBytes {
		return "", &httpError{status: http.StatusRequestEntityTooLarge,
			msg: fmt.Sprintf("body of %d bytes exceeds %d", r.ContentLength, h.opts.MaxBodyBytes)}
	}
	body := http.MaxBytesReader(w, r.Body, h.opts.MaxBodyBytes)
	encoding = strings.ToLower(strings.TrimSpace(r.Header.Get("Content-Encoding")))
	buf.Reset()
	switch encoding {
	case "", "identity":
		_, err = buf.ReadFrom(body)
		return "", err
	case "gzip", "x-gzip":
		zr, _ := h.gzips.Get().(*gzip.Reader)
		if zr == nil {
			zr = new(gzip.Reader)
		}
		defer h.gzips.Put(zr)
		if err := zr.Reset(body); err != nil {
			return "", readErr(err, "gzip")
		}
		// Read one byte more than allowed to tell "at the limit" from "over".
		n, err := buf.ReadFrom(io.LimitReader(zr, h.opts.MaxDecodedBytes+1))
		if err != nil {
			return "", readErr(err, "gzip")
		}
		if n > h.opts.MaxDecodedBytes {
			return "", &httpError{status: http.StatusRequestEntityTooLarge,
				msg: fmt.Sprintf("decompressed body exceeds %d bytes", h.opts.MaxDecodedBytes)}
		}
		return "gzip", nil
	}
	for _, a := range allow {
		if encoding == a {
			_, err = buf.ReadFrom(body)
			return encoding, err
		}
	}
	return "", &httpError{status: http.StatusUnsupportedMediaType, msg: fmt.Sprintf("unsupported Content-Encoding %q", encoding)}
}

// readErr keeps size-limit errors (413) and reports anything else from a
// decompressor as a bad request.
func readErr(err error, what string) error {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return err
	}
	return &httpError{status: http.StatusBadRequest, msg: fmt.Sprintf("invalid %s body: %v", what, err)}
}
