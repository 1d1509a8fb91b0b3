use super::*;

fn values(text: &str) -> Vec<(Kind, &str)> {
    crate::detect(text).iter().map(|f| (f.kind, &text[f.range()])).collect()
}

fn passwords(text: &str) -> Vec<&str> {
    values(text).into_iter().filter(|(k, _)| *k == Kind::Password).map(|(_, v)| v).collect()
}

#[test]
fn password_forms() {
    let cases = [
        ("password: hunter22", "hunter22"),
        ("Password=S3cr3t!", "S3cr3t!"),
        ("DB_PASSWORD=pg-Pass-2024", "pg-Pass-2024"),
        ("spring.datasource.password=Tr0ub4dor&3", "Tr0ub4dor&3"),
        ("\"password\": \"c0rrect-h0rse\"", "c0rrect-h0rse"),
        ("passwd: letmein", "letmein"),
        ("pwd=abc12345", "abc12345"),
        ("pass: 12345678", "12345678"),
        ("my new password: Winter2024.", "Winter2024"),
        ("(password: qwerty123)", "qwerty123"),
        ("mysql_root_password := 'rootpw99'", "rootpw99"),
        ("password：Abc@12345", "Abc@12345"),
        ("密码：Abc@12345，请查收", "Abc@12345"),
        ("初始密码是abc123456", "abc123456"),
        ("密码为 888888", "888888"),
        ("口令: Xy7#pq2L", "Xy7#pq2L"),
        ("WiFi密码是：guest2024。", "guest2024"),
    ];
    for (text, want) in cases {
        assert_eq!(passwords(text), [want], "{text}");
    }
}

#[test]
fn password_lookalikes() {
    for text in [
        "Click the password reset link",
        "Forgot your password?",
        "The password policy requires: 12 characters",
        "def login(username: str, password: str) -> bool:",
        "password: string;",
        "password = request.form['password']",
        "password = getpass.getpass()",
        "password=os.getenv(\"DB_PASSWORD\")",
        "password: process.env.DB_PASSWORD,",
        "password: ${DB_PASSWORD}",
        "password: '{{ vault_db_password }}'",
        "password: <your-password>",
        "password: ********",
        "password=self.password",
        "password=db_pass",
        "if password == 'hunter2':",
        "Password: required",
        "Password: at least 8 characters",
        "Password: 8-16 characters",
        "PWD=/home/alice/project",
        "OLDPWD=/tmp",
        "password_hash = bcrypt.hashpw(pw, salt)",
        "PASSWORD_MIN_LENGTH=12",
        "Boarding pass: Gate",
        "bypass: 12345678",
        "修改密码请联系管理员",
        "密码是多少？",
        "密码是8位数字",
        "密码错误，请重试",
        "密码学：abc12345",
    ] {
        assert_eq!(passwords(text), Vec::<&str>::new(), "{text}");
    }
}

#[test]
fn secret_assignments() {
    let cases = [
        ("api_key=5f4dcc3b5aa765d61d8327deb882cf99", "5f4dcc3b5aa765d61d8327deb882cf99"),
        ("\"apiKey\": \"Zm9vYmFyYmF6cXV4MTIz\"", "Zm9vYmFyYmF6cXV4MTIz"),
        ("X-API-Key: a1B2c3D4e5F6g7H8i9J0", "a1B2c3D4e5F6g7H8i9J0"),
        ("secret_key = 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY'", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"),
        ("aws_secret_access_key=wJalrXUtnFEMI/K7MDENG/bPxRfiCY", "wJalrXUtnFEMI/K7MDENG/bPxRfiCY"),
        ("access_token: ya29.A0ARrdaM8kQ3x7Zp2L", "ya29.A0ARrdaM8kQ3x7Zp2L"),
        ("Authorization: Bearer 8f3kQ9zLm2Xv7Rt4Wp1N", "8f3kQ9zLm2Xv7Rt4Wp1N"),
        ("authorization: Basic dXNlcjpwYXNzd29yZDEyMw==", "dXNlcjpwYXNzd29yZDEyMw=="),
        ("GITLAB_TOKEN=glpat-xR4mT8qZ2vN6kB1wY9cE", "glpat-xR4mT8qZ2vN6kB1wY9cE"),
        ("client_secret => \"Qx8vN2mK7pL4rT9s\"", "Qx8vN2mK7pL4rT9s"),
    ];
    for (text, want) in cases {
        assert_eq!(values(text), [(Kind::ApiKey, want)], "{text}");
    }
}

#[test]
fn secret_lookalikes() {
    for text in [
        "api_key = os.environ[\"OPENAI_API_KEY\"]",
        "api_key: YOUR_API_KEY_HERE",
        "token: text-embedding-3-small",
        "max_tokens=4096",
        "\"eos_token\": \"</s>\"",
        "tokenizer: cl100k_base",
        "Authorization: Bearer $TOKEN",
        "Authorization: Bearer <token>",
        "secret: xxxxxxxxxxxxxxxx1",
        "token=abc123",
        "api_key=sk-...",
    ] {
        assert_eq!(values(text), Vec::<(Kind, &str)>::new(), "{text}");
    }
}

#[test]
fn looks_random_examples() {
    assert!(looks_random(b"5f4dcc3b5aa765d61d8327deb882cf99"));
    assert!(looks_random(b"Zm9vYmFyYmF6cXV4MTIz"));
    assert!(!looks_random(b"text-embedding-3-small"));
    assert!(!looks_random(b"YOUR_API_KEY_HERE"));
    assert!(!looks_random(b"abababababababab12"));
}

#[test]
fn label_forms() {
    assert_eq!(passwords("My password is: Monkey!Banana7 — ok"), ["Monkey!Banana7"]);
    assert_eq!(passwords("This is: Monkey!Banana7"), Vec::<&str>::new());
    assert_eq!(passwords("GET /login?user=bob&password=hunter22&remember=1"), ["hunter22"]);
    assert_eq!(passwords("password=Tr0ub4dor&3"), ["Tr0ub4dor&3"]);
    assert_eq!(
        values("headers={'Authorization': 'Bearer M9cMeGuPr0bwFqPqYiJh8bpK'}"),
        [(Kind::ApiKey, "M9cMeGuPr0bwFqPqYiJh8bpK")]
    );
}
