package nsjail

import (
	"testing"
	"unsafe"
)

// Stacks and image buffers come back for the next sandbox, up to
// keptBuffers of each; what is not kept is let go.
func TestSpawnBuffersReused(t *testing.T) {
	var b buffers
	s := b.stack()
	if len(s) != stackSize {
		t.Fatalf("stack of %d bytes", len(s))
	}
	b.putStack(s)
	if again := b.stack(); &again[0] != &s[0] {
		t.Error("a stack given back was not used again")
	}
	b.putStack(make([]byte, 100))
	if len(b.stacks) != 0 {
		t.Error("a stack of another size was kept")
	}
	img, err := b.image()
	if err != nil {
		t.Fatal(err)
	}
	if len(img) != imageCap {
		t.Fatalf("image buffer of %d bytes", len(img))
	}
	img[0] = 1 // mapped and writable
	b.putImage(img)
	again, err := b.image()
	if err != nil || unsafe.SliceData(again) != unsafe.SliceData(img) {
		t.Errorf("an image buffer given back was not used again (%v)", err)
	}
	var many [][]byte
	for range keptBuffers + 3 {
		img, err := b.image()
		if err != nil {
			t.Fatal(err)
		}
		many = append(many, img)
		many = append(many, b.stack())
	}
	for i, m := range many {
		if i%2 == 0 {
			b.putImage(m)
		} else {
			b.putStack(m)
		}
	}
	if len(b.images) != keptBuffers || len(b.stacks) != keptBuffers {
		t.Errorf("kept %d image buffers and %d stacks, at most %d of each", len(b.images), len(b.stacks), keptBuffers)
	}
}
