package ui

import "strings"

// The interview screen's own words in the form languages the sample
// questionnaire uses, so a respondent looking at the screen sees one
// language. Other screens (and untranslated languages) stay in English.
var uiText = map[string]map[string]string{
	"Clear":   {"fr": "Effacer", "es": "Borrar", "ar": "مسح", "ja": "クリア"},
	"Remove":  {"fr": "Retirer", "es": "Quitar", "ar": "إزالة", "ja": "削除"},
	"Attach":  {"fr": "Joindre", "es": "Adjuntar", "ar": "إرفاق", "ja": "添付"},
	"Scan":    {"fr": "Scanner", "es": "Escanear", "ar": "مسح الرمز", "ja": "スキャン"},
	"Replace": {"fr": "Remplacer", "es": "Reemplazar", "ar": "استبدال", "ja": "置き換え"},
	"the file is not on this device": {"fr": "le fichier n'est pas sur cet appareil", "es": "el archivo no está en este dispositivo",
		"ar": "الملف ليس على هذا الجهاز", "ja": "ファイルはこの端末にありません"},
	"Save draft": {"fr": "Enregistrer le brouillon", "es": "Guardar borrador", "ar": "حفظ المسودة", "ja": "下書き保存"},
	"Finalize":   {"fr": "Finaliser", "es": "Finalizar", "ar": "إنهاء", "ja": "完了"},
	"Use this device's location": {"fr": "Utiliser la position de l'appareil", "es": "Usar la ubicación del dispositivo",
		"ar": "استخدام موقع الجهاز", "ja": "この端末の位置を使う"},
	"Every answer is saved on this device as you enter it.": {"fr": "Chaque réponse est enregistrée sur l'appareil dès sa saisie.",
		"es": "Cada respuesta se guarda en el dispositivo al ingresarla.", "ar": "تُحفظ كل إجابة على هذا الجهاز فور إدخالها.",
		"ja": "回答は入力するたびにこの端末に保存されます。"},
}

// langCode is the code of a form language ("Français (fr)" → "fr").
func langCode(lang string) string {
	if i := strings.LastIndexByte(lang, '('); i >= 0 && strings.HasSuffix(lang, ")") {
		lang = lang[i+1 : len(lang)-1]
	}
	code, _, _ := strings.Cut(strings.ToLower(strings.TrimSpace(lang)), "-")
	return code
}

// tr returns s in lang when the interview screen has it, else s.
func tr(lang, s string) string {
	if t, ok := uiText[s][langCode(lang)]; ok {
		return t
	}
	return s
}
