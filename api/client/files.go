package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"

	"github.com/sandboxd/sandboxd/api"
)

// Upload puts r's content into the daemon's file cache and returns its id
// (the content's SHA-256) and size. Uploading content that is cached
// already answers the same id.
func (c *Client) Upload(ctx context.Context, r io.Reader) (api.CachedFile, error) {
	var cf api.CachedFile
	resp, err := c.send(ctx, http.MethodPost, "/v1/files", r, "application/octet-stream", contentJSON)
	if err != nil {
		return cf, err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(&cf); err != nil {
		return cf, c.readError(ctx, http.MethodPost, "/v1/files", fmt.Errorf("decoding the answer: %w", err))
	}
	return cf, nil
}

// Files lists the caller's cached files (root's: every file).
func (c *Client) Files(ctx context.Context) ([]api.CachedFileInfo, error) {
	var list api.CachedFileList
	if err := c.Do(ctx, http.MethodGet, "/v1/files", nil, &list); err != nil {
		return nil, err
	}
	return list.Files, nil
}

// Download writes a cached file's content to w.
func (c *Client) Download(ctx context.Context, id string, w io.Writer) error {
	path, err := filePath(id)
	if err != nil {
		return err
	}
	resp, err := c.send(ctx, http.MethodGet, path, nil, "", "application/octet-stream")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(w, resp.Body); err != nil {
		return c.readError(ctx, http.MethodGet, path, err)
	}
	return nil
}

// DeleteFile takes a file out of the caller's cached files (root's: out of
// the cache). A file that a queued or running job uses is a conflict.
func (c *Client) DeleteFile(ctx context.Context, id string) error {
	path, err := filePath(id)
	if err != nil {
		return err
	}
	return c.Do(ctx, http.MethodDelete, path, nil, nil)
}

func filePath(id string) (string, error) {
	if id == "" {
		return "", errors.New("no file id given")
	}
	return "/v1/files/" + url.PathEscape(id), nil
}
