// Package fetch downloads a file for the project's tools.
package fetch

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"
)

// ToFile writes what url answers with 200 to the file at path, within
// timeout and at most limit bytes.
func ToFile(url, path string, timeout time.Duration, limit int64) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("HTTP %s", resp.Status)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, io.LimitReader(resp.Body, limit)); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
