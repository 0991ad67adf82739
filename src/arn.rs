//! The account and region lambdabox answers as, and the ARNs it builds from
//! them. Functions and layers both name themselves this way; keeping it
//! here lets neither module depend on the other for it.

/// Where functions and layers live, for ARNs: lambdabox answers as one
/// region and one account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Realm {
    pub region: String,
    pub account: String,
}

impl Default for Realm {
    fn default() -> Self {
        Realm { region: "us-east-1".into(), account: "000000000000".into() }
    }
}

impl Realm {
    /// `arn:aws:lambda:REGION:ACCOUNT:function:NAME`.
    pub fn function_arn(&self, name: &str) -> String {
        format!("arn:aws:lambda:{}:{}:function:{name}", self.region, self.account)
    }

    /// `arn:aws:lambda:REGION:ACCOUNT:layer:NAME`.
    pub fn layer_arn(&self, name: &str) -> String {
        format!("arn:aws:lambda:{}:{}:layer:{name}", self.region, self.account)
    }

    /// `arn:aws:lambda:REGION:ACCOUNT:layer:NAME:VERSION`.
    pub fn layer_version_arn(&self, name: &str, version: u64) -> String {
        format!("{}:{version}", self.layer_arn(name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arns_name_the_region_and_account() {
        let realm = Realm { region: "eu-west-1".into(), account: "123456789012".into() };
        assert_eq!(realm.function_arn("f"), "arn:aws:lambda:eu-west-1:123456789012:function:f");
        assert_eq!(realm.layer_version_arn("l", 3), "arn:aws:lambda:eu-west-1:123456789012:layer:l:3");
    }
}
