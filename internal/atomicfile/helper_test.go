package atomicfile

import (
	"bytes"
	"fmt"
	"os"
)

// helper runs in a child process of the tests: mode "loop" rewrites name
// with successive versions until killed, printing a byte after the first;
// mode "fsize" writes a large file under a small file size limit.
func helper(mode, name string) int {
	switch mode {
	case "loop":
		for n := 0; ; n++ {
			if err := WriteFile(name, version(n), 0o644); err != nil {
				fmt.Fprintln(os.Stderr, err)
				return 1
			}
			if n == 0 {
				os.Stdout.Write([]byte{'.'})
			}
		}
	case "fsize":
		if err := limitFileSize(64 << 10); err != nil {
			fmt.Println("no file size limit:", err)
			return 1
		}
		err := WriteFile(name, bytes.Repeat([]byte("n"), 1<<20), 0o644)
		if err == nil {
			fmt.Println("write succeeded under the limit")
			return 1
		}
		fmt.Println("write failed:", err)
		return 0
	}
	fmt.Println("unknown helper mode", mode)
	return 2
}
