package output

import "testing"

func TestSizePoolClasses(t *testing.T) {
	p := &sizePool[byte]{minShift: 4, maxShift: 10}
	for _, c := range []struct{ n, size, index int }{
		{0, 16, 0}, {1, 16, 0}, {16, 16, 0}, {17, 24, 1}, {24, 24, 1}, {25, 32, 2},
		{33, 48, 3}, {48, 48, 3}, {49, 64, 4}, {700, 768, 11}, {1024, 1024, 12},
	} {
		size, index, ok := p.class(c.n)
		if !ok || size != c.size || index != c.index {
			t.Errorf("class(%d) = %d, %d, %v; want %d, %d", c.n, size, index, ok, c.size, c.index)
		}
	}
	if _, _, ok := p.class(1025); ok {
		t.Error("class(1025) exists above maxShift")
	}
	for _, n := range []int{1, 20, 40, 100, 1000, 5000} {
		s := p.get(n)
		if len(*s) != 0 || cap(*s) < n || (n <= 1024 && cap(*s)*3 > max(n, 16)*4+3) {
			t.Errorf("get(%d): len %d cap %d", n, len(*s), cap(*s))
		}
		*s = append(*s, 1)
		p.put(s)
		if again := p.get(n); cap(*again) < n || len(*again) != 0 {
			t.Errorf("get(%d) after put: len %d cap %d", n, len(*again), cap(*again))
		}
	}
}
