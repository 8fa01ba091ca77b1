"""Generate the binary pages of the sample Acme Robotics wiki (examples/acme-wiki/).

Writes four files, overwriting them if they exist:

    examples/acme-wiki/finance/gifts-and-hospitality-policy.pdf   signed policy, PDF
    examples/acme-wiki/security/acceptable-use-policy.pdf          signed policy, PDF
    examples/acme-wiki/office/lisbon-floor-guide.docx              floor guide, DOCX
    examples/acme-wiki/hr/relocation-support.docx                  relocation guide, DOCX

Each document carries its title, author and date in the document metadata (PDF info
dictionary / DOCX core properties) and as its first heading. PDF section headings are numbered
("1. Purpose and scope") so the files connector recognises them; DOCX files use the real
"Title", "Heading 1" and "Heading 2" styles.

The generated files are committed, so the wiki works without this script. To re-run it, use a
scratch virtual environment (these packages are deliberately NOT project dependencies):

    python3 -m venv /tmp/wikigen
    /tmp/wikigen/bin/pip install fpdf2 python-docx
    /tmp/wikigen/bin/python examples/tools/make_office_docs.py

Only the built-in PDF fonts are used, so the text must stay within Latin-1 (write "EUR", "-").
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

WIKI = Path(__file__).resolve().parents[1] / "acme-wiki"

# A document is a list of blocks:
#   ("h1", text)            section heading (numbered in PDFs)
#   ("h2", text)            sub-section heading
#   ("p", text)             paragraph
#   ("bullets", [text])     bulleted list
#   ("steps", [text])       numbered list
#   ("table", [header, *rows])
#   ("signature", (name, role, date_text))

GIFTS = {
    "path": "finance/gifts-and-hospitality-policy.pdf",
    "title": "Gifts and Hospitality Policy",
    "author": "Finance Ops (finance-ops@acme.example)",
    "subject": "Anti-bribery: giving and receiving gifts, meals and hospitality",
    "date": datetime(2025, 7, 1, tzinfo=UTC),
    "meta_line": "Policy FIN-POL-007 | Version 3.0 | Effective 1 July 2025 | Owner: Finance Ops",
    "blocks": [
        ("h1", "Purpose and scope"),
        ("p", "This policy explains when Acmers may give or accept gifts, meals, entertainment and "
              "travel to or from people outside Acme Robotics. It applies to all employees, "
              "contractors and interns of Acme Robotics Lda, Acme Robotics Canada Inc. and Acme "
              "Robotics India Pvt Ltd, and supports our obligations under anti-bribery laws in "
              "Portugal, Canada, India and the countries where our customers operate."),
        ("p", "The principle is simple: nothing we give or receive may influence, or look as if it "
              "influences, a business decision."),
        ("h1", "Accepting gifts"),
        ("p", "You may accept an occasional gift from a customer, supplier or partner if its value "
              "is no more than EUR 75 (or the local equivalent) and it is not cash or a cash "
              "equivalent. Gifts above that value must be politely declined or handed to Finance "
              "Ops, who will donate them to charity and thank the sender on your behalf."),
        ("table", [
            ["Item", "Rule"],
            ["Gift worth up to EUR 30", "Accept; no need to record it"],
            ["Gift worth EUR 30 to EUR 75", "Accept; record it in the gift register"],
            ["Gift worth more than EUR 75", "Decline or hand to Finance Ops"],
            ["Cash, vouchers, gift cards", "Never accept, whatever the amount"],
            ["Gifts during a tender", "Never accept from a bidder"],
        ]),
        ("p", "The gift register is at compliance.acme.example/gifts. Record the giver, their "
              "company, the approximate value and the date within 5 working days of receiving it."),
        ("h1", "Hospitality"),
        ("p", "Business meals and events with customers and suppliers are a normal part of "
              "building relationships. Hospitality is acceptable when it is modest, infrequent and "
              "the host attends. Invitations that include travel or overnight stays paid by a "
              "supplier must be approved in advance by your director and the CFO."),
        ("bullets", [
            "Accepting more than four invitations from the same company in a calendar year needs "
            "your manager's approval.",
            "Tickets to major sporting or cultural events must be recorded in the gift register, "
            "whatever their value.",
            "Hospitality we offer to customers follows the client meal limits in the expense "
            "policy.",
        ]),
        ("h1", "Public officials"),
        ("p", "Do not offer or give anything of value to a public official, including employees of "
              "state-owned companies, customs officers or inspectors, without prior written "
              "approval from the General Counsel. Facilitation payments are forbidden in every "
              "country, even where local practice tolerates them."),
        ("h1", "Raising concerns"),
        ("p", "If you are offered something that makes you uncomfortable, or suspect a breach of "
              "this policy, tell Finance Ops or Legal, or use the Speak Up line described in the "
              "Code of Conduct. Breaches of this policy can lead to dismissal."),
        ("h1", "Approval"),
        ("p", "This policy was approved by the Audit Committee on 18 June 2025 and is reviewed "
              "every two years."),
        ("signature", ("Daniel Okafor", "Chief Financial Officer, Acme Robotics", "Signed in Lisbon on 1 July 2025")),
    ],
}

AUP = {
    "path": "security/acceptable-use-policy.pdf",
    "title": "Acceptable Use Policy",
    "author": "Security Team (security@acme.example)",
    "subject": "Acceptable use of Acme Robotics IT systems, data and devices",
    "date": datetime(2025, 9, 1, tzinfo=UTC),
    "meta_line": "Policy SEC-POL-002 | Version 5.1 | Effective 1 September 2025 | Owner: Security Team",
    "blocks": [
        ("h1", "Purpose"),
        ("p", "This policy sets out how Acmers may use Acme laptops, phones, accounts, networks and "
              "data. Every Acmer accepts it when they first sign in with AcmeID and again each year "
              "during Security Awareness training."),
        ("h1", "Scope"),
        ("p", "It covers all employees, contractors and interns, all Acme-owned devices and any "
              "personal device used for work (for example a phone with the Acme work profile)."),
        ("h1", "Personal use"),
        ("p", "Occasional personal use of Acme devices and internet access is allowed if it is "
              "brief, lawful, does not interfere with your work and does not involve storing large "
              "personal files. Do not use Acme devices for a second job or a personal business, "
              "and never install personal cloud sync clients on them."),
        ("h1", "Removable media"),
        ("p", "USB mass-storage devices are blocked on all Acme laptops. The only exception is the "
              "encrypted IronKey USB drives issued by the Pit Crew for moving files to robots and "
              "test rigs that have no network connection. Lost IronKeys are reported as lost "
              "devices."),
        ("h1", "Generative AI tools"),
        ("p", "AcmeAssist (assist.acme.example) is the only AI assistant approved for Internal and "
              "Confidential data, because our contract prevents the provider from storing or "
              "training on our prompts. Public AI chatbots and coding assistants may be used only "
              "with Public information. Restricted data must never be entered into any AI tool."),
        ("table", [
            ["Data level", "AcmeAssist", "Other AI tools"],
            ["Public", "Allowed", "Allowed"],
            ["Internal", "Allowed", "Not allowed"],
            ["Confidential", "Allowed", "Not allowed"],
            ["Restricted", "Not allowed", "Not allowed"],
        ]),
        ("h1", "Monitoring"),
        ("p", "Acme logs access to its systems and scans devices and email for malware and data "
              "leaks, within the limits of the law in each country. Content of personal messages "
              "is not read except during a formal investigation approved by the CISO and the "
              "General Counsel, with the Works Council informed in Portugal."),
        ("h1", "Accounts and passwords"),
        ("bullets", [
            "Never share your AcmeID credentials or approve MFA prompts you did not start.",
            "Lock your screen when you leave your device; laptops lock automatically after 5 "
            "minutes of inactivity.",
            "Do not try to bypass security controls such as device management, the firewall or "
            "the VPN.",
        ]),
        ("h1", "Breaches"),
        ("p", "Breaches of this policy are handled under the disciplinary procedure and may lead to "
              "dismissal and, where the law is broken, to legal action. Report suspected breaches "
              "to the Security team."),
        ("signature", ("Priya Deshpande", "Chief Information Security Officer, Acme Robotics",
                       "Signed in Lisbon on 1 September 2025")),
    ],
}

FLOOR_GUIDE = {
    "path": "office/lisbon-floor-guide.docx",
    "title": "Lisbon Office Floor Guide",
    "author": "Workplace Team (workplace@acme.example)",
    "subject": "What is on each floor of the Lisbon HQ",
    "date": datetime(2026, 3, 30, tzinfo=UTC),
    "blocks": [
        ("p", "Owner: Workplace Team, Lisbon. Last reviewed 30 March 2026 by Inês Moura. Print a "
              "copy for visitors, or send them the link."),
        ("h1", "Floors at a glance"),
        ("table", [
            ["Floor", "What is there"],
            ["Floor 0", "Reception and security desk, The Oil Can canteen, Main Hall auditorium, showers and lockers"],
            ["Floor 1", "Robot test lab (The Cage), hardware workshop, goods-in dock"],
            ["Floor 2", "Software and platform engineering, Pit Stop desk"],
            ["Floor 3", "People Team, Finance, Legal, wellness rooms, secure printer room"],
            ["Floor 4", "Leadership team, boardroom, rooftop terrace"],
        ]),
        ("h1", "Floor 0 - Ground floor"),
        ("p", "The Oil Can is the staff canteen. Hot lunch is served from 12:00 to 14:30; coffee "
              "and snacks all day. The Main Hall seats 180 people and hosts Gearbox and Demo "
              "Friday; book it through the Workplace team, not in Outlook."),
        ("h1", "Floor 1 - The Cage (robot test lab)"),
        ("p", "The Cage is a 1,200 square metre test floor with a mock warehouse: racking, a "
              "conveyor and charging docks. It is open from 07:30 to 20:00 on weekdays."),
        ("bullets", [
            "Lab access level on your badge and the Robot Floor Safety training are required.",
            "Safety shoes and a hi-vis vest are mandatory beyond the yellow line; spares hang by the door.",
            "Book test time on the lab calendar at least one day ahead.",
        ]),
        ("h1", "Floor 2 - Engineering"),
        ("p", "The Pit Stop desk is in room 2.01, directly opposite the lifts. Drop off broken "
              "hardware there and collect new peripherals."),
        ("h1", "Floor 3 - People, Finance and Legal"),
        ("h2", "Wellness and nursing room"),
        ("p", "Room 3.14 is a private wellness and nursing room with a fridge, a sink and a "
              "lockable door. Book it in Perch, or use it without booking when it is free. Room "
              "3.15 next door is a quiet room for prayer or meditation."),
        ("h2", "Secure printer room"),
        ("p", "Room 3.20 holds the secure printer for Restricted documents. Access is limited to "
              "named individuals."),
        ("h1", "Floor 4 - Leadership and rooftop"),
        ("p", "The rooftop terrace is open to all Acmers from 10:00 to 19:00 when the weather "
              "allows; Workplace closes it in strong wind."),
        ("h1", "Meeting rooms"),
        ("p", "Rooms are named after Portuguese rivers and booked in Outlook."),
        ("table", [
            ["Room", "Floor", "Seats", "Equipment"],
            ["Tejo (boardroom)", "4", "20", "Dual screens, ceiling microphones"],
            ["Douro", "2", "12", "Video bar, whiteboard wall"],
            ["Mondego", "2", "6", "Video bar"],
            ["Guadiana", "3", "8", "Video bar, whiteboard"],
            ["Sado", "1", "4", "Screen; overlooks The Cage"],
            ["Minho", "0", "10", "Video bar; used for interviews"],
        ]),
        ("h1", "Emergencies"),
        ("p", "The fire assembly point is Jardim do Beato, the garden across Rua do Beato from the "
              "main entrance. Do not use the lifts during an alarm. Defibrillators are at "
              "reception and at the entrance of The Cage."),
    ],
}

RELOCATION = {
    "path": "hr/relocation-support.docx",
    "title": "Relocation Support Guide",
    "author": "People Team (people@acme.example)",
    "subject": "Relocation packages for new hires and internal transfers",
    "date": datetime(2026, 2, 12, tzinfo=UTC),
    "blocks": [
        ("p", "Owner: Global Mobility, People Team (mobility@acme.example). Contact: Sara Mendes, "
              "Global Mobility lead. Last reviewed 12 February 2026."),
        ("h1", "Who is eligible"),
        ("bullets", [
            "New hires who move more than 100 km to join an Acme office, when the offer letter "
            "includes relocation.",
            "Acmers transferring between Lisbon, Toronto and Pune at Acme's request or after an "
            "internal move approved by both directors.",
        ]),
        ("p", "Acmers who choose to move for personal reasons while keeping the same role are not "
              "covered by this guide."),
        ("h1", "The package"),
        ("table", [
            ["Support", "International move", "Move within a country"],
            ["Relocation lump sum", "EUR 8,000 (CAD 12,000 / INR 6,00,000)", "EUR 3,000 (CAD 4,500 / INR 2,00,000)"],
            ["Temporary housing", "Up to 30 nights", "Up to 14 nights"],
            ["Flights or travel", "One-way economy for you and your family", "Travel costs for you and your family"],
            ["Visa and work permit", "Paid for you, your partner and children", "Not applicable"],
            ["Home-finding help", "2 days with a local agent", "Not included"],
        ]),
        ("p", "The lump sum is paid with your first salary in the new country and is taxed as "
              "income. Use it for shipping, furniture, deposits or anything else related to the "
              "move; no receipts are needed."),
        ("h1", "Visa and immigration"),
        ("p", "Our immigration partner BorderBridge handles work permits and residence "
              "applications. Global Mobility introduces you once the offer or transfer is signed. "
              "Typical timelines: Portugal tech visa 6 to 10 weeks, Canada work permit 8 to 16 "
              "weeks, India employment visa 3 to 6 weeks."),
        ("h1", "Settling in"),
        ("h2", "Language"),
        ("p", "Acmers moving to Lisbon get 40 hours of private Portuguese tuition in their first "
              "year, on top of the group classes at Acme Academy."),
        ("h2", "Partners"),
        ("p", "Partners can use a career coaching programme of up to 5 sessions, and BorderBridge "
              "helps with their work authorisation where the law allows it."),
        ("h1", "If you leave soon after moving"),
        ("p", "If you resign within 12 months of your start or transfer date, you repay 100% of the "
              "lump sum; between 12 and 24 months you repay 50%. Nothing is repaid if Acme ends "
              "your employment."),
        ("h1", "How to start"),
        ("steps", [
            "Sign your offer or transfer letter.",
            "Global Mobility sends you the relocation checklist and introduces BorderBridge.",
            "Book temporary housing through Global Mobility; Acme pays the provider directly.",
            "Claim flights in Ledgerly under the category Relocation.",
        ]),
    ],
}


# ----------------------------------------------------------------------------------------- PDF

def make_pdf(doc: dict) -> Path:
    from fpdf import FPDF
    from fpdf.enums import XPos, YPos

    class PolicyPDF(FPDF):
        def header(self):
            if self.page_no() == 1:  # the title block opens page 1
                return
            self.set_font("Helvetica", "B", 9)
            self.set_text_color(200, 80, 0)
            self.cell(0, 6, "ACME ROBOTICS", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
            self.set_text_color(0, 0, 0)
            self.ln(2)

        def footer(self):
            self.set_y(-15)
            self.set_font("Helvetica", "", 8)
            self.set_text_color(110, 110, 110)
            self.cell(0, 8, f"{doc['meta_line']} | Page {self.page_no()} of {{nb}}", align="C")

    pdf = PolicyPDF(format="A4")
    pdf.set_title(doc["title"])
    pdf.set_author(doc["author"])
    pdf.set_subject(doc["subject"])
    pdf.set_creator("Acme Robotics policy library")
    pdf.set_creation_date(doc["date"])
    pdf.set_margins(20, 18, 20)
    pdf.set_auto_page_break(True, margin=22)
    pdf.add_page()

    pdf.set_font("Helvetica", "B", 20)
    pdf.cell(0, 12, doc["title"], new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_font("Helvetica", "", 9)
    pdf.set_text_color(90, 90, 90)
    pdf.cell(0, 6, doc["meta_line"], new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_text_color(0, 0, 0)
    pdf.ln(4)

    section = 0
    width = pdf.w - pdf.l_margin - pdf.r_margin
    for kind, body in doc["blocks"]:
        if kind == "h1":
            section += 1
            pdf.ln(3)
            pdf.set_font("Helvetica", "B", 13)
            pdf.cell(0, 8, f"{section}. {body}", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        elif kind == "p":
            pdf.set_font("Helvetica", "", 10.5)
            pdf.multi_cell(width, 5.5, body, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
            pdf.ln(2)
        elif kind in ("bullets", "steps"):
            pdf.set_font("Helvetica", "", 10.5)
            for i, item in enumerate(body, 1):
                mark = "-" if kind == "bullets" else f"({i})"
                pdf.multi_cell(width, 5.5, f"{mark} {item}", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
            pdf.ln(2)
        elif kind == "table":
            pdf.set_font("Helvetica", "", 10)
            with pdf.table(line_height=6.5, text_align="LEFT", first_row_as_headings=True) as table:
                for row in body:
                    r = table.row()
                    for value in row:
                        r.cell(value)
            pdf.ln(3)
        elif kind == "signature":
            name, role, when = body
            pdf.ln(8)
            pdf.set_font("Helvetica", "I", 10)
            pdf.cell(0, 6, "Approved and signed:", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
            # a hand-drawn looking signature stroke
            x0, y0 = pdf.l_margin + 2, pdf.get_y() + 10
            pdf.set_draw_color(20, 40, 120)
            pdf.set_line_width(0.6)
            pdf.bezier([(x0, y0), (x0 + 8, y0 - 12), (x0 + 14, y0 + 8), (x0 + 24, y0 - 6)])
            pdf.bezier([(x0 + 24, y0 - 6), (x0 + 32, y0 - 14), (x0 + 36, y0 + 6), (x0 + 52, y0 - 2)])
            pdf.set_draw_color(0, 0, 0)
            pdf.set_line_width(0.2)
            pdf.set_y(y0 + 6)
            pdf.line(pdf.l_margin, pdf.get_y(), pdf.l_margin + 70, pdf.get_y())
            pdf.ln(2)
            pdf.set_font("Helvetica", "B", 10.5)
            pdf.cell(0, 6, name, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
            pdf.set_font("Helvetica", "", 10)
            pdf.cell(0, 5.5, role, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
            pdf.cell(0, 5.5, when, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        else:
            raise ValueError(kind)

    out = WIKI / doc["path"]
    out.parent.mkdir(parents=True, exist_ok=True)
    pdf.output(str(out))
    return out


# ---------------------------------------------------------------------------------------- DOCX

def make_docx(doc: dict) -> Path:
    import docx
    from docx.shared import Pt

    d = docx.Document()
    d.styles["Normal"].font.name = "Calibri"
    d.styles["Normal"].font.size = Pt(11)
    props = d.core_properties
    props.title = doc["title"]
    props.author = doc["author"]
    props.last_modified_by = doc["author"]
    props.subject = doc["subject"]
    props.created = doc["date"]
    props.modified = doc["date"]
    props.revision = 1

    d.add_heading(doc["title"], level=0)  # "Title" style
    for kind, body in doc["blocks"]:
        if kind == "h1":
            d.add_heading(body, level=1)
        elif kind == "h2":
            d.add_heading(body, level=2)
        elif kind == "p":
            d.add_paragraph(body)
        elif kind == "bullets":
            for item in body:
                d.add_paragraph(item, style="List Bullet")
        elif kind == "steps":
            for item in body:
                d.add_paragraph(item, style="List Number")
        elif kind == "table":
            table = d.add_table(rows=len(body), cols=len(body[0]))
            table.style = "Light Grid Accent 1"
            for i, row in enumerate(body):
                for j, value in enumerate(row):
                    cell = table.cell(i, j)
                    cell.text = value
                    if i == 0:
                        for run in cell.paragraphs[0].runs:
                            run.bold = True
            d.add_paragraph()
        else:
            raise ValueError(kind)

    out = WIKI / doc["path"]
    out.parent.mkdir(parents=True, exist_ok=True)
    d.save(str(out))
    return out


def main() -> None:
    for doc in (GIFTS, AUP):
        print("wrote", make_pdf(doc).relative_to(WIKI.parent.parent))
    for doc in (FLOOR_GUIDE, RELOCATION):
        print("wrote", make_docx(doc).relative_to(WIKI.parent.parent))


if __name__ == "__main__":
    main()
