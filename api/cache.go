package api

// CachedFile names a file in the daemon's file cache: its id is the
// SHA-256 of its content, in lowercase hex. POST /v1/files answers one,
// and Result.Kept holds one per kept workspace path.
type CachedFile struct {
	ID   string `json:"id"`
	Size int64  `json:"size"`
}

// CachedFileInfo is one entry of GET /v1/files.
type CachedFileInfo struct {
	ID   string `json:"id"`
	Size int64  `json:"size"`
	// LastUsed is RFC 3339: the file's upload, or its last use by a job or
	// a download.
	LastUsed   string `json:"last_used"`
	UploadedBy uint32 `json:"uploaded_by"`
}

// CachedFileList is the answer of GET /v1/files: the caller's own files
// (root's: every file).
type CachedFileList struct {
	Files []CachedFileInfo `json:"files"`
}
