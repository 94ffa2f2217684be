"""The demo office's approved form letters: one per advocacy campaign and one per everyday topic.

Each campaign letter answers the mail of one campaign (its topic and the writers' stance); each topic
letter answers letters people wrote in their own words on that topic. The Member's position is kept
general on purpose: a demo must not read as a political programme.
"""

from __future__ import annotations

# Campaign key -> (title, the paragraph that answers it). Topic and stance come from demo_texts.CAMPAIGNS.
CAMPAIGN_LETTERS: dict[str, tuple[str, str]] = {
    "snap-cuts": ("SNAP benefits in the farm bill",
                  "SNAP helps many families in our district put food on the table, and I know how much a cut or a "
                  "new paperwork rule would matter to them. As the House writes the next farm bill, I will weigh "
                  "every change to the program against what it means for children, seniors and veterans here."),
    "puppy-mills": ("Puppy Protection Act",
                    "Commercial breeding facilities should meet basic standards of space, exercise and veterinary "
                    "care. The Puppy Protection Act is before the Agriculture Committee, and I will keep your "
                    "support for it in mind if it comes to the floor."),
    "vets-burn-pits": ("Care for veterans exposed to burn pits",
                       "Veterans exposed to burn pits and other toxic substances were promised care, and the "
                       "backlog of disability claims at the VA is unacceptable. My office helps veterans with "
                       "stalled claims every week; if you or someone you know is waiting, please call us."),
    "nea-funding": ("Funding for the National Endowment for the Arts",
                    "Arts grants reach our district's theaters, museums, festivals and schools. As the "
                    "Appropriations Committee sets this year's funding for the National Endowment for the Arts, "
                    "I will keep your views and our local arts organizations in mind."),
    "voting-rights": ("Restoring the Voting Rights Act",
                      "Every eligible citizen deserves equal access to the ballot. Legislation to restore the "
                      "Voting Rights Act's preclearance protections is before the Judiciary Committee, and I will "
                      "follow its progress closely."),
    "right-to-repair": ("Right to repair",
                        "Owners and independent repair shops should be able to fix the phones, cars and farm "
                        "equipment people have paid for. Several right to repair bills are before the Energy and "
                        "Commerce Committee, and I will keep your support for them in mind."),
    "term-limits": ("Term limits for Members of Congress",
                    "A constitutional amendment to limit congressional terms would need two thirds of both "
                    "chambers and ratification by the states. I appreciate hearing where you stand as that "
                    "debate continues."),
    "police-reform": ("Police accountability reform",
                      "Public safety depends on trust between officers and the communities they serve. I will "
                      "keep your support for accountability measures in mind as the Judiciary Committee considers "
                      "police reform legislation."),
    "debt-ceiling": ("Federal spending and the debt limit",
                     "Our national debt is a serious long-term challenge, and I share your concern about "
                     "spending. I will keep your views in mind as Congress debates the budget and the debt limit."),
    "student-debt": ("Student loan debt relief",
                     "Student loan debt weighs on many families in our district. I will keep your views in mind as "
                     "Congress considers relief for borrowers and ways to make college more affordable."),
    "fema-disaster": ("Disaster relief funding",
                      "When disaster strikes, families and local governments need help quickly. I will keep your "
                      "support for FEMA's disaster relief fund in mind during this year's appropriations."),
    "clean-energy": ("Investing in clean energy jobs",
                     "Clean energy is bringing new jobs and investment to Ohio. I will keep your support for these "
                     "investments in mind as Congress considers energy legislation."),
    "offshore-drilling": ("New offshore drilling leases",
                          "I understand your concern about new offshore drilling leases and the risks they pose to "
                          "coastlines and fisheries. I will keep your views in mind as the Natural Resources "
                          "Committee reviews the leasing program."),
    "clean-water": ("Protecting clean water",
                    "Safe drinking water and healthy rivers matter to every family in our district. I will keep "
                    "your support for strong clean water protections in mind as Congress considers changes to "
                    "the Clean Water Act."),
    "pfas": ("PFAS in drinking water",
             "PFAS chemicals do not break down, and families deserve to know their water is safe. I support "
             "testing and cleanup, and I will follow the EPA's drinking water standards for PFAS closely."),
    "child-care": ("Affordable child care",
                   "The cost of child care is one of the biggest expenses for young families in our district. I "
                   "will keep your views in mind as Congress considers proposals to make care affordable and to "
                   "support the people who provide it."),
    "crypto-regulation": ("Consumer protection in cryptocurrency",
                          "Too many people have lost savings to cryptocurrency fraud and failed exchanges. I will "
                          "keep your support for consumer protections in mind as the Financial Services Committee "
                          "writes rules for digital assets."),
    "tariffs": ("Tariffs and small businesses",
                "Tariffs raise the cost of parts and goods our small businesses depend on. I will keep your "
                "concerns in mind as Congress reviews trade policy and its effect on Ohio's employers."),
    "usps": ("The United States Postal Service",
             "Reliable mail delivery matters to seniors who receive medicines, to small businesses and to rural "
             "communities. I will keep your support for the Postal Service in mind as Congress considers its "
             "finances and service standards."),
    "drug-prices": ("Lowering prescription drug prices",
                    "No one should have to choose between medicine and groceries. I will keep your support for "
                    "lowering prescription drug prices in mind as Congress considers Medicare negotiation and "
                    "limits on out-of-pocket costs."),
    "medicaid-cuts": ("Medicaid funding",
                      "Medicaid covers many children, seniors in nursing homes and people with disabilities in our "
                      "district. I will keep your opposition to cuts in mind as Congress debates the budget."),
    "housing-costs": ("Affordable housing",
                      "Rents and home prices have risen faster than wages in our district. I will keep your views "
                      "in mind as Congress considers ways to build more homes that working families can afford."),
    "dreamers": ("Protecting Dreamers",
                 "Young people brought to this country as children have grown up in our communities, schools and "
                 "workplaces. I will keep your support for a permanent solution for Dreamers in mind as Congress "
                 "debates immigration."),
    "border-security": ("Border security",
                        "A secure border and an orderly immigration system are responsibilities of the federal "
                        "government. I will keep your views in mind as Congress considers funding for border "
                        "security and immigration enforcement."),
    "ukraine-aid": ("Support for Ukraine",
                    "The war in Ukraine affects our allies, energy prices and global security. I will keep your "
                    "support for continued assistance in mind as Congress considers further aid."),
    "pro-act": ("The PRO Act and workers' right to organize",
                "Workers should be able to organize and bargain for fair wages and safe workplaces. I will keep "
                "your support for the PRO Act in mind as the Education and Workforce Committee considers it."),
    "public-lands": ("Keeping public lands in public hands",
                     "Our national forests and public lands belong to all Americans, for hunting, fishing, hiking "
                     "and the generations to come. I will keep your opposition to selling them off in mind."),
    "net-neutrality": ("Net neutrality",
                       "An open internet lets small businesses, schools and families reach what they need without "
                       "their provider picking winners. I will keep your support for net neutrality in mind as "
                       "Congress and the FCC consider the rules."),
    "social-security": ("Protecting Social Security",
                        "Social Security is a promise to every worker who has paid into it. I will keep your "
                        "opposition to benefit cuts in mind as Congress considers the program's future."),
    "child-tax-credit": ("Expanding the Child Tax Credit",
                         "The Child Tax Credit helps many families in our district with the cost of raising "
                         "children. I will keep your support for expanding it in mind as Congress writes tax "
                         "legislation."),
    "transit-funding": ("Funding for public transit",
                        "Buses and trains carry many of our neighbors to work, school and the doctor. I will keep "
                        "your support for public transit funding in mind as Congress writes the next "
                        "transportation bill."),
}

# Everyday topics people write about in their own words -> (title, the paragraph that answers them).
TOPIC_LETTERS: dict[str, tuple[str, str]] = {
    "Transportation and Public Works": (
        "Roads, bridges and transit in our district",
        "Safe roads and bridges and reliable transit matter to everyone who commutes in our district. My office "
        "works with the Ohio Department of Transportation and our cities on federal infrastructure funding, and "
        "I have shared your concerns with them."),
    "Health": (
        "Health care: your concerns",
        "Access to affordable health care is one of the concerns I hear about most. I will keep your thoughts in "
        "mind as Congress considers health care legislation, and if you are having trouble with Medicare or a "
        "federal health program, my office can help."),
    "Education": (
        "Education in our district",
        "Our schools, teachers and students deserve support at every level. I will keep your views in mind as "
        "Congress considers education funding and policy."),
    "Taxation": (
        "Taxes and the federal budget",
        "Families and small businesses in our district deserve a tax code that is fair and simple. I will keep "
        "your views in mind as Congress considers tax legislation; if you have a problem with the IRS, my office "
        "can help."),
    "Government Operations and Politics": (
        "How the federal government works for you",
        "You deserve a federal government that is accountable and works well. I will keep your views in mind, "
        "and my office is always ready to help with a federal agency."),
    "Environmental Protection": (
        "Protecting our environment",
        "Clean air, clean water and healthy parks matter to every family in our district. I will keep your "
        "views in mind as Congress considers environmental legislation."),
    "Agriculture and Food": (
        "Agriculture and food",
        "Ohio's farmers and the families who depend on affordable food are important to me. I will keep your "
        "views in mind as Congress writes the next farm bill."),
    "Labor and Employment": (
        "Jobs and workers in our district",
        "Good jobs, fair wages and safe workplaces are the foundation of our district's economy. I will keep "
        "your views in mind as Congress considers labor and employment legislation."),
    "Crime and Law Enforcement": (
        "Public safety in our community",
        "Everyone deserves to feel safe in their neighborhood. I work with local law enforcement and community "
        "leaders on public safety, and I will keep your views in mind as Congress considers these issues."),
}


# Titles whose first word is a name, so it keeps its capital in the middle of a sentence.
_PROPER = ("SNAP", "Puppy", "PFAS", "Medicaid", "Social", "Ohio", "The")


def about(title: str) -> str:
    """The title as it reads after "about": "the Puppy Protection Act", "funding for public transit"."""
    first = title.split(" ", 1)[0]
    if first == "The":
        return "the " + title[4:]
    if first in _PROPER or first.isupper():
        return ("the " if title.endswith("Act") else "") + title
    return title[0].lower() + title[1:]


def letter_body(title: str, paragraph: str, *, campaign: bool) -> str:
    """A letter in the office's house style, with merge fields for the greeting, the place and the signature."""
    opening = (f"Thank you for contacting me about {about(title)}. I appreciate hearing from constituents in "
               "{{ constituent.city or 'our district' }}."
               if campaign else
               "Thank you for writing to me. I read every letter from {{ constituent.city or 'our district' }}, "
               "and I appreciate you taking the time to share your thoughts.")
    return ("{{ constituent.salutation }}\n\n" + opening + "\n\n" + paragraph + "\n\nPlease continue to let me "
            "know what matters to you. You can sign up for my newsletter on my website.\n\n{{ office.signature }}")
