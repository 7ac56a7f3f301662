package main

import (
	"bytes"
	"image"
	"image/color"
	"image/png"
	"testing"
)

// TestShrink: an image of at most 256 colours is kept exactly; one of
// more keeps its 256 most frequent colours exactly and draws each other
// in the nearest of them.
func TestShrink(t *testing.T) {
	img := image.NewRGBA(image.Rect(0, 0, 40, 40))
	for y := range 40 {
		for x := range 40 {
			img.Set(x, y, color.RGBA{uint8(x * 6), uint8(y * 6), 0, 255}) // 1600 colours, once each
		}
	}
	for x := range 40 { // row 0 and 1 repeated: its 40 colours are the most frequent
		for y := range 10 {
			img.Set(x, y, color.RGBA{uint8(x * 6), 0, 0, 255})
		}
	}
	var in bytes.Buffer
	if err := png.Encode(&in, img); err != nil {
		t.Fatal(err)
	}
	data, err := shrink(in.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	out, err := png.Decode(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := out.(*image.Paletted); !ok {
		t.Fatalf("the shrunk image is a %T, not paletted", out)
	}
	for x := range 40 {
		if got, want := color.RGBAModel.Convert(out.At(x, 0)), img.At(x, 0); got != want {
			t.Fatalf("pixel (%d,0): %v, want %v", x, got, want)
		}
	}
	// A pixel whose colour was dropped is drawn in the nearest colour of
	// the palette, which holds 256.
	pal := out.(*image.Paletted).Palette
	if len(pal) != 256 {
		t.Fatalf("the palette has %d colours", len(pal))
	}
	if got, want := color.RGBAModel.Convert(out.At(39, 39)), color.RGBAModel.Convert(pal.Convert(img.At(39, 39))); got != want {
		t.Fatalf("pixel (39,39): %v, want the nearest colour %v", got, want)
	}
	// At most 256 colours: kept exactly.
	small := image.NewRGBA(image.Rect(0, 0, 16, 16))
	for y := range 16 {
		for x := range 16 {
			small.Set(x, y, color.RGBA{uint8(x * 16), uint8(y * 16), 7, 255})
		}
	}
	in.Reset()
	_ = png.Encode(&in, small)
	if data, err = shrink(in.Bytes()); err != nil {
		t.Fatal(err)
	}
	out, _ = png.Decode(bytes.NewReader(data))
	for y := range 16 {
		for x := range 16 {
			if got := color.RGBAModel.Convert(out.At(x, y)); got != small.At(x, y) {
				t.Fatalf("pixel (%d,%d) of 256 colours: %v, want %v", x, y, got, small.At(x, y))
			}
		}
	}
}
