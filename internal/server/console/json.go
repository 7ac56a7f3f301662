package console

import (
	"encoding/json"
	"fmt"

	"github.com/cascade-update/cascade/internal/server/api"
)

// apiMessage is the error message of an admin API answer.
func apiMessage(body []byte) string {
	var e api.Error
	if json.Unmarshal(body, &e) == nil && e.Error != "" {
		return e.Error
	}
	return string(body)
}

func decodeToken(body []byte) (api.Token, error) {
	var t api.Token
	if err := json.Unmarshal(body, &t); err != nil {
		return t, fmt.Errorf("read the created token: %w", err)
	}
	return t, nil
}
