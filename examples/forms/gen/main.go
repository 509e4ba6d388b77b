// Command gen writes examples/forms/community-security.xlsx, the sample
// questionnaire, from the tables below (the readable source of the form):
//
//	go run ./examples/forms/gen
package main

import (
	"flag"
	"log"
	"strings"

	"github.com/xuri/excelize/v2"
)

// Languages of the form, in column order.
var langs = []string{"English (en)", "Français (fr)", "Español (es)", "日本語 (ja)", "العربية (ar)"}

// t is one text in the five languages, in the order of langs.
type t [5]string

type q struct {
	typ, name                  string
	label, hint                t
	required, relevant         string
	constraint                 string
	constraintMsg, requiredMsg t
	calculation, appearance    string
	repeatCount, choiceFilter  string
	sensitive                  bool
}

var required = t{"An answer is needed.", "Une réponse est nécessaire.", "Se necesita una respuesta.", "回答が必要です。", "الإجابة مطلوبة."}

var survey = []q{
	{typ: "start", name: "started"},
	{typ: "end", name: "ended"},
	{typ: "today", name: "interview_day"},
	{typ: "deviceid", name: "device"},
	{typ: "username", name: "enumerator"},
	{typ: "begin group", name: "intro", label: t{"Introduction", "Introduction", "Introducción", "はじめに", "مقدمة"}},
	{typ: "note", name: "welcome", label: t{
		"We are asking people in this community how safe they feel. Your answers are confidential and you may stop at any time.",
		"Nous demandons aux habitants de cette communauté à quel point ils se sentent en sécurité. Vos réponses sont confidentielles et vous pouvez arrêter à tout moment.",
		"Preguntamos a las personas de esta comunidad qué tan seguras se sienten. Sus respuestas son confidenciales y puede detenerse en cualquier momento.",
		"この地域の皆さんがどれだけ安全だと感じているかを伺っています。回答は秘密に扱われ、いつでも中止できます。",
		"نسأل سكان هذا المجتمع عن مدى شعورهم بالأمان. إجاباتك سرية ويمكنك التوقف في أي وقت."}},
	{typ: "select_one yes_no", name: "consent", required: "yes", requiredMsg: required, label: t{
		"Do you agree to take part?", "Acceptez-vous de participer ?", "¿Acepta participar?", "参加に同意しますか？", "هل توافق على المشاركة؟"}},
	{typ: "end group"},

	{typ: "begin group", name: "household", relevant: "${consent} = 'yes'", label: t{"Household", "Ménage", "Hogar", "世帯", "الأسرة"}},
	{typ: "select_one site", name: "site", required: "yes", requiredMsg: required, label: t{
		"Where do you live now?", "Où vivez-vous actuellement ?", "¿Dónde vive ahora?", "現在どこに住んでいますか？", "أين تعيش الآن؟"}},
	{typ: "geopoint", name: "location", label: t{"Location of the interview", "Lieu de l'entretien", "Lugar de la entrevista", "インタビューの場所", "موقع المقابلة"},
		hint: t{"Stand outside to get a better signal.", "Placez-vous dehors pour un meilleur signal.", "Salga al exterior para tener mejor señal.", "屋外に出ると電波が良くなります。", "قف في الخارج لالتقاط إشارة أفضل."}},
	{typ: "integer", name: "hh_size", required: "yes", requiredMsg: required, constraint: ". >= 1 and . <= 30",
		label:         t{"How many people live in your household?", "Combien de personnes vivent dans votre ménage ?", "¿Cuántas personas viven en su hogar?", "世帯には何人住んでいますか？", "كم عدد الأشخاص الذين يعيشون في أسرتك؟"},
		constraintMsg: t{"Between 1 and 30.", "Entre 1 et 30.", "Entre 1 y 30.", "1から30の間で入力してください。", "بين 1 و 30."}},
	{typ: "begin repeat", name: "roster", repeatCount: "${hh_size}", label: t{"Household member", "Membre du ménage", "Miembro del hogar", "世帯員", "فرد من الأسرة"}},
	{typ: "text", name: "member_name", required: "yes", requiredMsg: required, label: t{"First name", "Prénom", "Nombre", "名前", "الاسم الأول"}},
	{typ: "select_one sex", name: "sex", label: t{"Sex", "Sexe", "Sexo", "性別", "الجنس"}},
	{typ: "integer", name: "age", constraint: ". >= 0 and . < 120", label: t{"Age in years", "Âge en années", "Edad en años", "年齢", "العمر بالسنوات"},
		constraintMsg: t{"Between 0 and 119.", "Entre 0 et 119.", "Entre 0 y 119.", "0から119の間で入力してください。", "بين 0 و 119."}},
	{typ: "select_one relation", name: "relation", label: t{"Relation to the respondent", "Lien avec la personne interrogée", "Relación con la persona entrevistada", "回答者との関係", "صلة القرابة بالمجيب"}},
	{typ: "end repeat"},
	{typ: "calculate", name: "members", calculation: "count(${member_name})"},
	{typ: "note", name: "members_note", label: t{"${members} members recorded.", "${members} membres enregistrés.", "${members} miembros registrados.", "${members} 人を記録しました。", "تم تسجيل ${members} أفراد."}},
	{typ: "end group"},

	{typ: "begin group", name: "threats", relevant: "${consent} = 'yes'", label: t{"Perceived threats", "Menaces perçues", "Amenazas percibidas", "感じている脅威", "التهديدات المتصورة"}},
	{typ: "select_one safety", name: "safe_day", required: "yes", requiredMsg: required, label: t{
		"How safe do you feel walking here during the day?", "Vous sentez-vous en sécurité en marchant ici pendant la journée ?", "¿Qué tan seguro se siente caminando aquí durante el día?", "昼間ここを歩くとき、どのくらい安全だと感じますか？", "ما مدى شعورك بالأمان عند المشي هنا خلال النهار؟"}},
	{typ: "select_one safety", name: "safe_night", required: "yes", requiredMsg: required, label: t{
		"And after dark?", "Et après la tombée de la nuit ?", "¿Y cuando oscurece?", "では暗くなってからは？", "وبعد حلول الظلام؟"}},
	{typ: "select_multiple threat", name: "threats_faced", label: t{
		"Which threats worry you most?", "Quelles menaces vous inquiètent le plus ?", "¿Qué amenazas le preocupan más?", "最も心配な脅威は何ですか？", "ما التهديدات التي تقلقك أكثر؟"},
		hint: t{"Choose all that apply.", "Choisissez toutes les réponses qui s'appliquent.", "Elija todas las que correspondan.", "当てはまるものをすべて選んでください。", "اختر كل ما ينطبق."}},
	{typ: "text", name: "threat_other", relevant: "selected(${threats_faced}, 'other')", required: "yes", requiredMsg: required, label: t{
		"Which other threat?", "Quelle autre menace ?", "¿Qué otra amenaza?", "その他の脅威は何ですか？", "ما التهديد الآخر؟"}},
	{typ: "end group"},

	{typ: "begin group", name: "fear_want", relevant: "${consent} = 'yes'", label: t{"Freedom from fear, freedom from want", "Vivre à l'abri de la peur et du besoin", "Libertad del miedo y de la necesidad", "恐怖と欠乏からの自由", "التحرر من الخوف ومن العوز"}},
	{typ: "select_one agree", name: "free_from_fear", label: t{
		"I can live my daily life without fear.", "Je peux vivre ma vie quotidienne sans peur.", "Puedo vivir mi vida diaria sin miedo.", "恐れることなく日常生活を送ることができる。", "أستطيع أن أعيش حياتي اليومية دون خوف."}},
	{typ: "select_one agree", name: "free_from_want", label: t{
		"My household has enough to meet its basic needs.", "Mon ménage a de quoi couvrir ses besoins essentiels.", "Mi hogar tiene lo suficiente para cubrir sus necesidades básicas.", "私の世帯は基本的な必要を満たすのに十分なものがある。", "لدى أسرتي ما يكفي لتلبية احتياجاتها الأساسية."}},
	{typ: "select_multiple need", name: "unmet_needs", relevant: "${free_from_want} = 'disagree' or ${free_from_want} = 'strongly_disagree'", label: t{
		"Which needs are not met?", "Quels besoins ne sont pas satisfaits ?", "¿Qué necesidades no están cubiertas?", "満たされていない必要は何ですか？", "ما الاحتياجات غير الملباة؟"}},
	{typ: "end group"},

	{typ: "begin group", name: "services", relevant: "${consent} = 'yes'", label: t{"Access to services", "Accès aux services", "Acceso a servicios", "サービスへのアクセス", "الوصول إلى الخدمات"}},
	{typ: "select_one access", name: "access_health", label: t{"Health care", "Soins de santé", "Atención de salud", "医療", "الرعاية الصحية"}},
	{typ: "select_one access", name: "access_school", label: t{"School for the children", "École pour les enfants", "Escuela para los niños", "子どもの学校", "المدرسة للأطفال"}},
	{typ: "select_one access", name: "access_justice", label: t{"Police or justice", "Police ou justice", "Policía o justicia", "警察または司法", "الشرطة أو القضاء"}},
	{typ: "end group"},

	{typ: "begin group", name: "gbv", relevant: "${consent} = 'yes'", label: t{"Safety of women and girls", "Sécurité des femmes et des filles", "Seguridad de mujeres y niñas", "女性と少女の安全", "سلامة النساء والفتيات"}},
	{typ: "select_one yes_no", name: "gbv_private", required: "yes", requiredMsg: required, label: t{
		"Are we speaking in private, with no one else listening?", "Parlons-nous en privé, sans personne qui écoute ?", "¿Estamos hablando en privado, sin nadie más escuchando?", "他の人に聞かれずに、二人だけで話していますか？", "هل نتحدث على انفراد دون أن يستمع أحد؟"},
		hint: t{"If not, skip this section.", "Sinon, passez cette section.", "Si no, omita esta sección.", "そうでなければ、この部分は飛ばしてください。", "إن لم يكن كذلك، فتخطَّ هذا القسم."}},
	{typ: "select_one agree", name: "gbv_risk", relevant: "${gbv_private} = 'yes'", sensitive: true, label: t{
		"Women and girls here face violence because of their gender.", "Ici, les femmes et les filles subissent des violences en raison de leur genre.", "Aquí las mujeres y niñas sufren violencia por su género.", "ここでは女性と少女が性別を理由に暴力を受けている。", "تتعرض النساء والفتيات هنا للعنف بسبب نوعهن الاجتماعي."}},
	{typ: "select_multiple gbv_service", name: "gbv_services", relevant: "${gbv_private} = 'yes'", sensitive: true, label: t{
		"Where could a survivor get help?", "Où une survivante pourrait-elle trouver de l'aide ?", "¿Dónde podría obtener ayuda una sobreviviente?", "被害を受けた人はどこで助けを得られますか？", "أين يمكن للناجية أن تحصل على المساعدة؟"}},
	{typ: "end group"},

	{typ: "begin group", name: "coexistence", relevant: "${consent} = 'yes'", label: t{"Living together", "Vivre ensemble", "Convivencia", "共に暮らす", "العيش المشترك"}},
	{typ: "select_one relations", name: "host_relations", label: t{
		"How are relations with the host community?", "Comment sont les relations avec la communauté d'accueil ?", "¿Cómo son las relaciones con la comunidad de acogida?", "受け入れ地域の人々との関係はどうですか？", "كيف هي العلاقات مع المجتمع المضيف؟"}},
	{typ: "select_one agree", name: "trust_host", label: t{
		"I would trust a neighbour from the host community with my children.", "Je confierais mes enfants à un voisin de la communauté d'accueil.", "Confiaría mis hijos a un vecino de la comunidad de acogida.", "受け入れ地域の隣人に子どもを預けられる。", "أثق بجار من المجتمع المضيف لرعاية أطفالي."}},
	{typ: "text", name: "comment", appearance: "multiline", label: t{
		"Is there anything else you want to tell us?", "Voulez-vous ajouter quelque chose ?", "¿Hay algo más que quiera decirnos?", "他に伝えたいことはありますか？", "هل هناك أي شيء آخر تود إخبارنا به؟"}},
	{typ: "end group"},
	{typ: "note", name: "thanks", label: t{"Thank you.", "Merci.", "Gracias.", "ありがとうございました。", "شكراً لك."}},
}

type c struct {
	list, name string
	label      t
}

var choices = []c{
	{"yes_no", "yes", t{"Yes", "Oui", "Sí", "はい", "نعم"}},
	{"yes_no", "no", t{"No", "Non", "No", "いいえ", "لا"}},
	{"site", "camp_a", t{"Camp A", "Camp A", "Campamento A", "キャンプA", "المخيم أ"}},
	{"site", "camp_b", t{"Camp B", "Camp B", "Campamento B", "キャンプB", "المخيم ب"}},
	{"site", "host_village", t{"Host village", "Village d'accueil", "Aldea de acogida", "受け入れ村", "القرية المضيفة"}},
	{"sex", "female", t{"Female", "Féminin", "Femenino", "女性", "أنثى"}},
	{"sex", "male", t{"Male", "Masculin", "Masculino", "男性", "ذكر"}},
	{"relation", "self", t{"Respondent", "Personne interrogée", "Persona entrevistada", "回答者本人", "المجيب"}},
	{"relation", "spouse", t{"Spouse", "Conjoint(e)", "Cónyuge", "配偶者", "الزوج/الزوجة"}},
	{"relation", "child", t{"Child", "Enfant", "Hijo/a", "子ども", "ابن/ابنة"}},
	{"relation", "other", t{"Other", "Autre", "Otro", "その他", "آخر"}},
	{"safety", "very_safe", t{"Very safe", "Très en sécurité", "Muy seguro", "とても安全", "آمن جداً"}},
	{"safety", "safe", t{"Safe", "En sécurité", "Seguro", "安全", "آمن"}},
	{"safety", "unsafe", t{"Unsafe", "Pas en sécurité", "Inseguro", "危険", "غير آمن"}},
	{"safety", "very_unsafe", t{"Very unsafe", "Pas du tout en sécurité", "Muy inseguro", "とても危険", "غير آمن إطلاقاً"}},
	{"threat", "theft", t{"Theft", "Vol", "Robo", "盗難", "السرقة"}},
	{"threat", "armed_groups", t{"Armed groups", "Groupes armés", "Grupos armados", "武装集団", "الجماعات المسلحة"}},
	{"threat", "eviction", t{"Eviction", "Expulsion", "Desalojo", "立ち退き", "الإخلاء"}},
	{"threat", "discrimination", t{"Discrimination", "Discrimination", "Discriminación", "差別", "التمييز"}},
	{"threat", "other", t{"Other", "Autre", "Otra", "その他", "أخرى"}},
	{"agree", "strongly_agree", t{"Strongly agree", "Tout à fait d'accord", "Muy de acuerdo", "強くそう思う", "أوافق بشدة"}},
	{"agree", "agree", t{"Agree", "D'accord", "De acuerdo", "そう思う", "أوافق"}},
	{"agree", "disagree", t{"Disagree", "Pas d'accord", "En desacuerdo", "そう思わない", "لا أوافق"}},
	{"agree", "strongly_disagree", t{"Strongly disagree", "Pas du tout d'accord", "Muy en desacuerdo", "全くそう思わない", "لا أوافق بشدة"}},
	{"need", "food", t{"Food", "Nourriture", "Comida", "食料", "الغذاء"}},
	{"need", "water", t{"Water", "Eau", "Agua", "水", "الماء"}},
	{"need", "shelter", t{"Shelter", "Abri", "Refugio", "住まい", "المأوى"}},
	{"need", "work", t{"Work", "Travail", "Trabajo", "仕事", "العمل"}},
	{"access", "easy", t{"Easy", "Facile", "Fácil", "容易", "سهل"}},
	{"access", "difficult", t{"Difficult", "Difficile", "Difícil", "困難", "صعب"}},
	{"access", "none", t{"No access", "Aucun accès", "Sin acceso", "利用できない", "لا يوجد وصول"}},
	{"gbv_service", "health_centre", t{"Health centre", "Centre de santé", "Centro de salud", "保健センター", "المركز الصحي"}},
	{"gbv_service", "women_space", t{"Women's safe space", "Espace sûr pour les femmes", "Espacio seguro para mujeres", "女性のための安全な場所", "المساحة الآمنة للنساء"}},
	{"gbv_service", "police", t{"Police", "Police", "Policía", "警察", "الشرطة"}},
	{"gbv_service", "none", t{"Nowhere", "Nulle part", "En ningún lugar", "どこにもない", "لا مكان"}},
	{"relations", "good", t{"Good", "Bonnes", "Buenas", "良い", "جيدة"}},
	{"relations", "mixed", t{"Mixed", "Mitigées", "Mixtas", "良くも悪くもある", "متفاوتة"}},
	{"relations", "tense", t{"Tense", "Tendues", "Tensas", "緊張している", "متوترة"}},
}

func main() {
	out := flag.String("o", "examples/forms/community-security.xlsx", "output file")
	flag.Parse()
	f := excelize.NewFile()
	defer f.Close()
	f.SetSheetName("Sheet1", "survey")
	f.NewSheet("choices")
	f.NewSheet("settings")

	head := []string{"type", "name"}
	for _, col := range []string{"label", "hint", "required_message", "constraint_message"} {
		for _, l := range langs {
			head = append(head, col+"::"+l)
		}
	}
	head = append(head, "required", "relevant", "constraint", "calculation", "appearance", "repeat_count", "choice_filter", "sensitive")
	rows := [][]string{head}
	for _, x := range survey {
		r := []string{x.typ, x.name}
		for _, tx := range []t{x.label, x.hint, x.requiredMsg, x.constraintMsg} {
			r = append(r, tx[:]...)
		}
		sens := ""
		if x.sensitive {
			sens = "yes"
		}
		r = append(r, x.required, x.relevant, x.constraint, x.calculation, x.appearance, x.repeatCount, x.choiceFilter, sens)
		rows = append(rows, r)
	}
	write(f, "survey", rows)

	ch := [][]string{{"list_name", "name"}}
	for _, l := range langs {
		ch[0] = append(ch[0], "label::"+l)
	}
	for _, x := range choices {
		ch = append(ch, append([]string{x.list, x.name}, x.label[:]...))
	}
	write(f, "choices", ch)
	write(f, "settings", [][]string{
		{"form_id", "form_title", "version", "default_language", "style"},
		{"community_security", "Community perception of security", "2026.11.1", langs[0], "pages"},
	})
	if err := f.SaveAs(*out); err != nil {
		log.Fatal(err)
	}
	log.Printf("wrote %s (%d survey rows, %d choices, %s)", *out, len(survey), len(choices), strings.Join(langs, ", "))
}

func write(f *excelize.File, sheet string, rows [][]string) {
	for i, r := range rows {
		for j, v := range r {
			if v == "" {
				continue
			}
			cell, _ := excelize.CoordinatesToCellName(j+1, i+1)
			f.SetCellStr(sheet, cell, v)
		}
	}
}
