package output

import "testing"

// TestSCRAMSHA256 replays the example exchange of RFC 7677, section 3.
func TestSCRAMSHA256(t *testing.T) {
	c := newSCRAM("SCRAM-SHA-256")
	c.nonce = "rOprNGfwEbeRWgbNEkqO"
	if err := c.Begin("user", "pencil", ""); err != nil {
		t.Fatal(err)
	}
	first, err := c.Step("")
	if err != nil || first != "n,,n=user,r=rOprNGfwEbeRWgbNEkqO" {
		t.Fatalf("client-first %q %v", first, err)
	}
	final, err := c.Step("r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096")
	want := "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
	if err != nil || final != want {
		t.Fatalf("client-final\n got %q %v\nwant %q", final, err, want)
	}
	if _, err := c.Step("v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="); err != nil || !c.Done() {
		t.Fatalf("server-final: %v done=%v", err, c.Done())
	}

	// A wrong server signature is refused.
	c = newSCRAM("SCRAM-SHA-256")
	c.nonce = "rOprNGfwEbeRWgbNEkqO"
	c.Begin("user", "pencil", "")
	c.Step("")
	c.Step("r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096")
	if _, err := c.Step("v=AAAATRBi23WpRR/wtup+mMhK1iN4o+3mqkIwfrLfHaY="); err == nil {
		t.Fatal("forged server signature accepted")
	}
	// A server nonce that does not extend ours is refused.
	c = newSCRAM("SCRAM-SHA-512")
	c.nonce = "abc"
	c.Begin("user", "pencil", "")
	c.Step("")
	if _, err := c.Step("r=xyz,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"); err == nil {
		t.Fatal("foreign nonce accepted")
	}
}
