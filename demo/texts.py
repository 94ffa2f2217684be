"""Texts for the demo office: campaign templates, organic letter parts and casework requests.

All of it is written for Mailroom; any resemblance to a real campaign is the point of a demo.
"""

from __future__ import annotations

# (key, topic, stance, organisation, subject, template sentences)
CAMPAIGNS: tuple[tuple[str, str, str, str, str, tuple[str, ...]], ...] = (
    ("snap-cuts", "Agriculture and Food", "oppose", "Hunger Free Neighbors", "Protect SNAP from cuts", (
        "I am writing to urge you to oppose any cuts to the Supplemental Nutrition Assistance Program in the farm bill.",
        "SNAP helps more than forty million Americans put food on the table, including children, seniors and veterans.",
        "Cutting benefits or adding new paperwork requirements will push struggling families deeper into hunger.",
        "Please stand up for working families and vote against any farm bill that weakens SNAP.")),
    ("puppy-mills", "Animals", "support", "Humane Action Fund", "Support the Puppy Protection Act", (
        "As a constituent and animal lover, I ask you to cosponsor the Puppy Protection Act.",
        "Too many dogs in commercial breeding facilities live in cramped wire cages with little veterinary care.",
        "This bill sets basic standards for space, exercise, socialization and veterinary checkups.",
        "Dogs are not products, and the law should treat them with basic decency.")),
    ("vets-burn-pits", "Armed Forces and National Security", "support", "Veterans Forward", "Keep the promise to burn pit veterans", (
        "I urge you to fully fund the care promised to veterans exposed to burn pits and other toxic substances.",
        "Thousands of veterans are still waiting months for their disability claims to be decided.",
        "The VA needs the staff and resources to process these claims quickly and fairly.",
        "Our veterans kept their promise to this country, and we must keep ours to them.")),
    ("nea-funding", "Arts, Culture, Religion", "support", "Arts Action Network", "Fund the National Endowment for the Arts", (
        "Please support strong funding for the National Endowment for the Arts in this year's appropriations.",
        "Arts grants reach every congressional district and support local jobs, festivals and schools.",
        "Every dollar of federal arts funding leverages many more from private and local sources.",
        "Our community's theaters, museums and arts programs depend on this partnership.")),
    ("voting-rights", "Civil Rights and Liberties, Minority Issues", "support", "Democracy Now Coalition", "Restore the Voting Rights Act", (
        "I am asking you to support legislation restoring the full protections of the Voting Rights Act.",
        "Since the Supreme Court weakened preclearance, many states have closed polling places and purged voter rolls.",
        "Every eligible citizen deserves equal access to the ballot, no matter their race or zip code.",
        "Please cosponsor and vote for this bill to protect the freedom to vote.")),
    ("right-to-repair", "Commerce", "support", "Fix It Forward", "Support the right to repair", (
        "I urge you to support right to repair legislation for electronics, cars and farm equipment.",
        "Manufacturers should not be allowed to block owners and independent shops from fixing what they have bought.",
        "Repair restrictions drive up costs, create electronic waste and hurt small repair businesses.",
        "Please vote for a national right to repair law.")),
    ("term-limits", "Congress", "support", "Citizens for Term Limits", "Term limits for Congress", (
        "I am writing to ask you to support a constitutional amendment setting term limits for members of Congress.",
        "Career politicians become too close to lobbyists and too far from the people they represent.",
        "Term limits would bring new ideas and restore trust in our government.",
        "Please sign the term limits pledge and cosponsor the amendment.")),
    ("police-reform", "Crime and Law Enforcement", "support", "Safe Communities Alliance", "Pass police accountability reform", (
        "I urge you to support the police accountability bill now before Congress.",
        "It would ban chokeholds, create a national registry of police misconduct and fund de-escalation training.",
        "Good officers and the communities they serve both benefit from clear standards and accountability.",
        "Please vote yes to build trust between police and the people they protect.")),
    ("debt-ceiling", "Economics and Public Finance", "oppose", "Taxpayers United", "Stop the reckless spending", (
        "I am deeply concerned about our national debt, which now exceeds thirty trillion dollars.",
        "Raising the debt ceiling again without spending reforms only kicks the can to our children.",
        "Washington must live within its means the way every family in this district has to.",
        "Please oppose any debt limit increase that does not include real spending cuts.")),
    ("student-debt", "Education", "support", "Student Borrowers United", "Cancel student debt", (
        "I am asking you to support student debt relief for the millions of Americans crushed by loans.",
        "Many borrowers have paid for years and still owe more than they originally borrowed because of interest.",
        "Relief would let a generation buy homes, start businesses and save for retirement.",
        "Please support legislation to cancel student debt and fix the broken repayment system.")),
    ("fema-disaster", "Emergency Management", "support", "Resilient Communities", "Fund disaster relief now", (
        "Please support full funding for the FEMA Disaster Relief Fund.",
        "Floods, wildfires and storms are hitting our communities more often and with more force.",
        "When the fund runs low, rebuilding projects stop and families wait months for help.",
        "Congress must make sure help is there when the next disaster strikes.")),
    ("clean-energy", "Energy", "support", "Clean Power Future", "Invest in clean energy jobs", (
        "I urge you to protect the clean energy tax credits that are creating jobs across the country.",
        "Solar, wind and battery factories are being built in communities that need good paying work.",
        "Repealing these credits would raise electricity bills and send those jobs overseas.",
        "Please vote to keep the clean energy investments in place.")),
    ("offshore-drilling", "Energy", "oppose", "Coastal Defense League", "No new offshore drilling", (
        "I am writing to oppose the plan to open new areas of our coasts to offshore oil and gas drilling.",
        "A single spill can devastate fisheries, tourism and coastal economies for decades.",
        "We should be investing in clean energy, not new fossil fuel leases.",
        "Please oppose any legislation that expands offshore drilling.")),
    ("clean-water", "Environmental Protection", "support", "Clean Water Action Network", "Protect our clean water", (
        "I am writing to ask you to defend the Clean Water Act and the protections for our streams and wetlands.",
        "Millions of Americans get their drinking water from streams that recent rules left unprotected.",
        "Polluters should not be allowed to dump waste into the waters our families depend on.",
        "Please oppose any bill that weakens clean water protections.")),
    ("pfas", "Environmental Protection", "support", "Safe Water Families", "Get PFAS out of our water", (
        "I urge you to support strong limits on PFAS forever chemicals in drinking water.",
        "These chemicals build up in our bodies and are linked to cancer and other serious illness.",
        "Communities near military bases and factories have been exposed for decades.",
        "Please support funding to clean up PFAS contamination and hold polluters responsible.")),
    ("child-care", "Families", "support", "Parents Together Action", "Make child care affordable", (
        "I am a parent asking you to support legislation that makes child care affordable for working families.",
        "Child care now costs more than rent in many parts of the country.",
        "Parents are leaving the workforce because they cannot find or afford care for their children.",
        "Please support investment in child care so families can work and children can thrive.")),
    ("crypto-regulation", "Finance and Financial Sector", "support", "Consumer Finance Watch", "Protect consumers from crypto fraud", (
        "I urge you to support strong consumer protections for cryptocurrency investors.",
        "Ordinary families have lost their savings in exchange collapses and fraudulent schemes.",
        "Crypto firms should follow the same rules as banks and brokers when they handle people's money.",
        "Please support legislation that brings clear oversight to digital asset markets.")),
    ("tariffs", "Foreign Trade and International Finance", "oppose", "Main Street Trade Coalition", "Tariffs hurt our small businesses", (
        "I am writing as a small business owner to oppose the new tariffs on imported goods.",
        "Tariffs are taxes paid by American businesses and consumers, not by foreign countries.",
        "Our costs have gone up and we have had to delay hiring because of them.",
        "Please support legislation giving Congress a vote on new tariffs.")),
    ("usps", "Government Operations and Politics", "support", "Save Our Post Office", "Save the Postal Service", (
        "I urge you to protect the United States Postal Service and oppose cuts to delivery standards.",
        "Seniors, veterans and rural communities depend on the mail for medicine, checks and ballots.",
        "Slower delivery and closed post offices hurt the people who rely on the mail the most.",
        "Please support a strong, public Postal Service.")),
    ("drug-prices", "Health", "support", "Seniors for Fair Drug Prices", "Lower prescription drug prices", (
        "I am asking you to support legislation to lower the cost of prescription drugs.",
        "Americans pay far more for the same medicines than people in any other country.",
        "Too many seniors split pills or skip doses because they cannot afford their prescriptions.",
        "Please let Medicare negotiate prices for more drugs and cap what patients pay out of pocket.")),
    ("medicaid-cuts", "Health", "oppose", "Health Care for All Coalition", "Don't cut Medicaid", (
        "I am writing to urge you to oppose cuts to Medicaid.",
        "Medicaid covers children, people with disabilities, nursing home residents and working families.",
        "Cuts would close rural hospitals and take coverage away from millions of people.",
        "Please vote against any budget that cuts Medicaid funding.")),
    ("housing-costs", "Housing and Community Development", "support", "Homes for All", "Build more affordable homes", (
        "I urge you to support legislation to expand the supply of affordable housing.",
        "Rents have risen much faster than wages, and too many families spend half their income on housing.",
        "Expanding the housing tax credit and housing vouchers would help millions of renters.",
        "Please make affordable housing a priority this year.")),
    ("dreamers", "Immigration", "support", "Dream Action Coalition", "Protect Dreamers", (
        "I am asking you to support a permanent path to citizenship for Dreamers.",
        "Dreamers were brought here as children and have grown up as Americans in every way but on paper.",
        "They are teachers, nurses, soldiers and small business owners in our community.",
        "Please pass the Dream Act and end their uncertainty.")),
    ("border-security", "Immigration", "support", "Secure Borders Now", "Secure the border", (
        "I am writing to urge you to make border security a top priority.",
        "Record numbers of crossings are straining border communities and federal resources.",
        "We need more agents, better technology and faster decisions on asylum claims.",
        "Please support legislation that secures the border and enforces our immigration laws.")),
    ("ukraine-aid", "International Affairs", "support", "Stand With Ukraine Coalition", "Continue support for Ukraine", (
        "I urge you to continue military and humanitarian aid to Ukraine.",
        "Ukraine is defending its democracy against an unprovoked invasion.",
        "Supporting Ukraine now deters aggression and protects our own security.",
        "Please vote for the supplemental aid package.")),
    ("pro-act", "Labor and Employment", "support", "Working Families Alliance", "Pass the PRO Act", (
        "I am asking you to support the PRO Act to protect workers' right to organize.",
        "Workers who try to form a union too often face firing, threats and delays.",
        "Strong unions built the middle class and can rebuild it.",
        "Please cosponsor the PRO Act and vote for it when it comes to the floor.")),
    ("public-lands", "Public Lands and Natural Resources", "oppose", "Public Lands Alliance", "Keep public lands in public hands", (
        "I am writing to oppose any proposal to sell off or transfer our national public lands.",
        "These lands belong to all Americans and support hunting, fishing, hiking and local economies.",
        "Once they are sold, they are gone forever and locked behind no trespassing signs.",
        "Please keep public lands in public hands.")),
    ("net-neutrality", "Science, Technology, Communications", "support", "Open Internet Project", "Restore net neutrality", (
        "I urge you to support legislation restoring net neutrality protections.",
        "Internet providers should not be able to block, slow or charge extra for the websites we choose.",
        "A free and open internet is essential for small businesses, students and free speech.",
        "Please vote to make net neutrality the law.")),
    ("social-security", "Social Welfare", "oppose", "Retirees United", "Hands off Social Security", (
        "I am writing to urge you to protect Social Security and oppose any cuts to earned benefits.",
        "I paid into Social Security my whole working life, and millions of retirees depend on it.",
        "Raising the retirement age or cutting cost of living adjustments is a cut to benefits.",
        "Please protect the benefits we earned and strengthen the program for future generations.")),
    ("child-tax-credit", "Taxation", "support", "Family Economic Fund", "Expand the Child Tax Credit", (
        "I am asking you to support expanding the Child Tax Credit.",
        "When the credit was expanded, child poverty fell to the lowest level on record.",
        "Families used the money for food, rent, school supplies and child care.",
        "Please make the expanded Child Tax Credit permanent.")),
    ("transit-funding", "Transportation and Public Works", "support", "Transit Riders Union", "Fund public transit", (
        "I urge you to support strong federal funding for public transit.",
        "Buses and trains connect workers to jobs, students to school and seniors to doctors.",
        "Transit agencies across the country are cutting service because of budget shortfalls.",
        "Please invest in reliable, affordable public transportation.")),
)

PERSONAL_STORIES: tuple[str, ...] = (
    "My own family has lived this: my mother had to choose between her medicine and groceries last winter.",
    "I have lived in {city} for {years} years and I have never written to my representative before.",
    "As a {job} in {city}, I see the effects of this every single day.",
    "My son is a veteran and I watched him wait almost two years for help that should have come in months.",
    "Last year my hours were cut and we relied on help from our church to get through.",
    "I am a retired {job} and I worry about what kind of country my grandchildren will inherit.",
    "Our small business on {street} has been struggling and this issue matters to us.",
    "I grew up here, raised three kids here, and I want them to be able to stay here.",
    "My daughter has a chronic illness and this directly affects our family.",
    "I vote in every election and I will be watching how you vote on this.",
    "Please don't just send me a form letter back; I want to know where you actually stand.",
    "I have talked to many of my neighbors in {city} and they feel the same way.",
)

JOBS = ("teacher", "nurse", "farmer", "small business owner", "truck driver", "social worker", "electrician",
        "pastor", "firefighter", "pharmacist", "student", "engineer", "home health aide", "librarian")

GREETINGS = ("Dear Representative Doe,", "Dear Rep. Doe,", "Representative Doe,", "Dear Congresswoman Doe,",
             "Hello,", "To whom it may concern,", "Dear Jane Doe,", "Congresswoman,", "")

SIGNOFFS = ("Sincerely,", "Thank you,", "Respectfully,", "Thank you for your time,", "Best regards,",
            "Regards,", "Thanks,", "")

# Organic letters: a topic and sentences a person might write in their own words.
ORGANIC: dict[str, tuple[str, ...]] = {
    "Transportation and Public Works": (
        "The potholes on {street} have gotten so bad that I blew a tire last week.",
        "Is there any federal money coming for the bridge repair on Route {num}?",
        "The bus that used to run past my house every half hour now comes once an hour.",
        "Traffic near the {city} interchange is dangerous and something needs to be done before someone is killed.",
        "I would like to know what the infrastructure law has actually paid for in our county."),
    "Health": (
        "My insurance premium went up {num} percent this year and I do not know how we will keep paying it.",
        "The clinic in {city} closed and now the nearest doctor is forty minutes away.",
        "I was billed for an emergency room visit that my insurance says it should have covered.",
        "What is Congress doing about the shortage of nurses in our hospitals?",
        "My husband's insulin costs more each month than our car payment."),
    "Education": (
        "Our school district is short {num} teachers and class sizes keep growing.",
        "I am worried about the changes to federal funding for special education.",
        "My daughter's school still has lead pipes and no air conditioning.",
        "Why are student loan servicers allowed to lose track of payments?",
        "Please support more funding for school counselors and mental health."),
    "Taxation": (
        "I still have not received my tax refund from last year and the IRS phone line never answers.",
        "Small businesses like mine pay a higher effective rate than large corporations.",
        "Please explain how the new tax law affects retirees on a fixed income.",
        "Property taxes in {city} have doubled, and I know that is local, but I want federal relief for seniors."),
    "Government Operations and Politics": (
        "I want to thank you for the town hall in {city} last month.",
        "Why does Congress keep running up against government shutdown deadlines?",
        "Members of Congress should not be allowed to trade individual stocks.",
        "I would like a tour of the Capitol for my family in {month}; how do I request one?"),
    "Environmental Protection": (
        "There is a strong chemical smell near the creek behind {street} and nobody will tell us what it is.",
        "I am concerned about the plans for a landfill expansion near {city}.",
        "Our air quality alerts this summer were the worst I can remember.",
        "What can be done about the illegal dumping along the river?"),
    "Agriculture and Food": (
        "As a farmer, I need to know whether the disaster payments for last season's drought are coming.",
        "Fertilizer prices have gone up so much that we are planting fewer acres.",
        "Our food bank in {city} served {num} families last month, a record.",
        "Please keep the school lunch program strong; many kids in our district depend on it."),
    "Labor and Employment": (
        "The plant in {city} is laying off {num} workers and we need help with retraining.",
        "I was misclassified as a contractor and lost my overtime pay.",
        "Please raise the federal minimum wage; nobody can live on it.",
        "My unemployment claim has been pending for weeks."),
    "Crime and Law Enforcement": (
        "Car break-ins in our neighborhood have gone up a lot this year.",
        "Please fund more mental health responders so police are not the only ones answering those calls.",
        "Fentanyl took my nephew's life last year; what is being done to stop it from coming in?",
        "Our sheriff's office needs more resources for rural patrols."),
}

ORGANIC_OPENERS = (
    "I am writing about something that has been on my mind.",
    "I have a question and a concern.",
    "I am not sure who else to ask about this.",
    "I am a constituent in {city} and wanted to share my concerns.",
    "Thank you for reading this.",
    "",
)

ORGANIC_CLOSERS = (
    "I would appreciate a response.",
    "Please let me know what you plan to do.",
    "Thank you for your service.",
    "I look forward to hearing from you.",
    "",
)

# Casework: (category, subject, the request in a few words). The demo surrounds each request with
# the writer's own sentences, so no two casework letters read alike.
CASEWORK: tuple[tuple[str, str, str], ...] = (
    ("Veterans Affairs", "Help with my VA disability claim",
     "Can your office check on my VA disability claim {claim}?"),
    ("Passports", "Passport not received - travel in {weeks} weeks",
     "My passport application from {month} has not arrived and we travel in {weeks} weeks."),
    ("Social Security", "Social Security payments stopped",
     "My Social Security payments stopped this month without any explanation."),
    ("IRS", "IRS refund delayed for over a year",
     "The IRS still has not sent my refund of ${num}00 after I verified my identity."),
    ("Immigration", "Green card application delayed",
     "Please ask USCIS about green card case {claim}, pending {num} months."),
    ("Medicare/Medicaid", "Medicare claim denied",
     "Medicare denied a claim my doctor says was necessary, twice now."),
)
