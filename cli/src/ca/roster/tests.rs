use super::*;

const NVFLARE: &str = r#"
project = "demo project"

[roles.server]
usages = ["server-auth", "client-auth"]
lifetime = "30d"
max-key-age = "365d"

[roles.lead]
usages = ["client-auth"]
lifetime = "12h"
uris = ["https://nvidia.com/nvflare/v1/project/{project}/study/{study}"]

[[participants]]
name = "server1.example.org"
org = "nvidia"
role = "server"
sans = ["server1.example.org", "10.0.0.5"]

[[participants]]
name = "admin1"
org = "nvidia"
role = "lead"
studies = ["lung", "brain-2"]
"#;

#[test]
fn a_roster_decides_each_participants_certificate() {
    let roster = Roster::parse(NVFLARE).unwrap();
    let server = roster.participant("server1.example.org").unwrap();
    assert_eq!(server.usage, LeafUsage::Node);
    assert_eq!(server.lifetime_secs, 30 * 86_400);
    assert_eq!(server.max_key_age_secs, Some(365 * 86_400));
    assert_eq!(
        server.sans,
        San::parse_set(&["server1.example.org", "10.0.0.5"]).unwrap()
    );
    assert_eq!(server.attributes.organization.as_deref(), Some("nvidia"));
    assert_eq!(server.attributes.role.as_deref(), Some("server"));
    let admin = roster.participant("admin1").unwrap();
    assert_eq!(admin.usage, LeafUsage::TlsClient);
    assert_eq!(admin.lifetime_secs, 12 * 3600);
    assert_eq!(admin.max_key_age_secs, None);
    let shown: Vec<String> = admin.sans.iter().map(String::from).collect();
    assert_eq!(
        shown,
        [
            "admin1",
            "https://nvidia.com/nvflare/v1/project/demo%20project/study/brain-2",
            "https://nvidia.com/nvflare/v1/project/demo%20project/study/lung",
        ]
    );
    assert!(roster.participant("Admin1").is_none());
    assert!(roster.participant("stranger").is_none());
}

#[test]
fn a_malformed_roster_is_refused_with_the_line_and_the_reason() {
    let cases: &[(&str, &str, &str)] = &[
        ("[roles.x\n", "line 1", "unclosed table"),
        (
            "[roles.a]\nusages = [\"client-auth\"]\nlifetime = \"1d\"\ncolour = 1\n",
            "line 4",
            "unknown field `colour`",
        ),
        (
            "[roles.a]\nusages = [\"email\"]\nlifetime = \"1d\"\n",
            "line 1",
            "usage \"email\" is not one of server-auth, client-auth",
        ),
        (
            "[roles.a]\nusages = [\"client-auth\"]\nlifetime = \"10m\"\n",
            "line 1",
            "not a duration from 1h to 365d",
        ),
        (
            "[roles.a]\nusages = [\"client-auth\"]\nlifetime = \"1d\"\nmax-key-age = \"2h\"\n",
            "line 1",
            "1d or more",
        ),
        (
            "[roles.a]\nusages = [\"client-auth\"]\nlifetime = \"1d\"\nuris = [\"https://x.org/{colour}\"]\n",
            "line 1",
            "{colour} is not one of",
        ),
        (
            "[roles.a]\nusages = [\"client-auth\"]\nlifetime = \"1d\"\n\n[[participants]]\nname = \"n1\"\nrole = \"b\"\n",
            "line 5",
            "role \"b\" is not defined; define [roles.b] or use one of: a",
        ),
        (
            "[roles.a]\nusages = [\"client-auth\"]\nlifetime = \"1d\"\n\n[[participants]]\nname = \"../etc\"\nrole = \"a\"\n",
            "line 5",
            "not a valid name",
        ),
        (
            "[roles.a]\nusages = [\"client-auth\"]\nlifetime = \"1d\"\n\n[[participants]]\nname = \"n1\"\nrole = \"a\"\n\n[[participants]]\nname = \"n1\"\nrole = \"a\"\n",
            "line 9",
            "listed twice",
        ),
        (
            "[roles.a]\nusages = [\"client-auth\"]\nlifetime = \"1d\"\nuris = [\"https://x.org/{org}\"]\n\n[[participants]]\nname = \"n1\"\nrole = \"a\"\n",
            "line 6",
            "{org} has no value",
        ),
        (
            "[roles.a]\nusages = [\"client-auth\"]\nlifetime = \"1d\"\n\n[[participants]]\nname = \"n1\"\nrole = \"a\"\nsans = [\"https://evil.example/\"]\n",
            "line 5",
            "URIs come from the role",
        ),
        (
            "[roles.a]\nusages = [\"client-auth\"]\nlifetime = \"1d\"\n\n[[participants]]\nname = \"n1\"\nrole = \"a\"\norg = \"a\\u0007b\"\n",
            "line 5",
            "org \"a\\u{7}b\" must be",
        ),
    ];
    for (text, line, why) in cases {
        let e = Roster::parse(text).unwrap_err();
        assert!(e.starts_with(line), "{text:?}: {e}");
        assert!(e.contains(why), "{text:?}: {e}");
    }
}

#[test]
fn no_file_is_no_roster_and_a_bad_one_names_its_path() {
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(Roster::load(dir.path()).unwrap(), None);
    std::fs::create_dir(dir.path().join("config")).unwrap();
    std::fs::write(dir.path().join(ROSTER_FILE), "project = 1\n").unwrap();
    let e = Roster::load(dir.path()).unwrap_err().to_string();
    assert!(e.contains("federation.toml: line 1"), "{e}");
    std::fs::write(dir.path().join(ROSTER_FILE), NVFLARE).unwrap();
    assert!(Roster::load(dir.path()).unwrap().is_some());
}
