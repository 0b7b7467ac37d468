// One schema for both backends; the migrations in migrations/sqlite and
// migrations/postgres create the same tables.

diesel::table! {
    packages (id) {
        id -> Text,
        kind -> Text,
        name -> Text,
        epoch -> Integer,
        version -> Text,
        release -> Text,
        arch -> Text,
        filename -> Text,
        size -> BigInt,
        summary -> Text,
        uploaded_at -> BigInt,
        uploaded_by -> Text,
        primary_xml -> Text,
        filelists_xml -> Text,
        other_xml -> Text,
        apt_stanza -> Nullable<Text>,
        pool_path -> Nullable<Text>,
        held_at -> Nullable<BigInt>,
        held_by -> Nullable<Text>,
        held_reason -> Nullable<Text>,
        discarded_at -> Nullable<BigInt>,
        discarded_by -> Nullable<Text>,
        discard_reason -> Nullable<Text>,
    }
}

diesel::table! {
    channels (name) {
        name -> Text,
        position -> Integer,
        head -> Integer,
        frozen_at -> Nullable<BigInt>,
        frozen_by -> Nullable<Text>,
        frozen_reason -> Nullable<Text>,
    }
}

diesel::table! {
    revisions (channel, number) {
        channel -> Text,
        number -> Integer,
        created_at -> BigInt,
        superseded_at -> Nullable<BigInt>,
        actor -> Text,
        summary -> Text,
        package_count -> Integer,
    }
}

diesel::table! {
    revision_files (channel, number, path) {
        channel -> Text,
        number -> Integer,
        path -> Text,
        blob -> Text,
        size -> BigInt,
    }
}

diesel::table! {
    memberships (channel, package_id, added_in) {
        channel -> Text,
        package_id -> Text,
        added_in -> Integer,
        removed_in -> Nullable<Integer>,
    }
}

diesel::table! {
    events (id) {
        id -> BigInt,
        at -> BigInt,
        kind -> Text,
        package_id -> Nullable<Text>,
        channel -> Nullable<Text>,
        revision -> Nullable<Integer>,
        actor -> Text,
        client -> Text,
        reason -> Nullable<Text>,
        detail -> Nullable<Text>,
    }
}

diesel::table! {
    tokens (id) {
        id -> BigInt,
        name -> Text,
        token_hash -> Text,
        permissions -> Text,
        created_at -> BigInt,
        created_by -> Text,
        expires_at -> Nullable<BigInt>,
        last_used_at -> Nullable<BigInt>,
        last_used_from -> Nullable<Text>,
        revoked_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    rejections (package_id, channel) {
        package_id -> Text,
        channel -> Text,
        at -> BigInt,
        actor -> Text,
        reason -> Text,
    }
}

diesel::table! {
    policies (channel) {
        channel -> Text,
        spec -> Text,
        updated_at -> BigInt,
        updated_by -> Text,
    }
}

diesel::table! {
    schedules (channel) {
        channel -> Text,
        rule -> Text,
        next_run_at -> BigInt,
        last_run_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    webhooks (id) {
        id -> BigInt,
        name -> Text,
        url -> Text,
        secret -> Text,
        channels -> Text,
        packages -> Text,
        event_types -> Text,
        format -> Text,
        active -> Bool,
        cursor -> BigInt,
        attempts -> Integer,
        first_attempt_at -> Nullable<BigInt>,
        next_attempt_at -> Nullable<BigInt>,
        failures -> Integer,
        lease_until -> Nullable<BigInt>,
        disabled_reason -> Nullable<Text>,
        created_at -> BigInt,
        created_by -> Text,
    }
}

diesel::table! {
    webhook_attempts (id) {
        id -> BigInt,
        webhook_id -> BigInt,
        event_id -> BigInt,
        at -> BigInt,
        status_code -> Nullable<Integer>,
        latency_ms -> Integer,
        error -> Nullable<Text>,
        success -> Bool,
        manual -> Bool,
    }
}

diesel::table! {
    package_deps (id) {
        id -> BigInt,
        package_id -> Text,
        role -> Text,
        name -> Text,
        op -> Nullable<Text>,
        version -> Nullable<Text>,
        expr -> Nullable<Text>,
    }
}

diesel::table! {
    ui_sessions (secret_hash) {
        secret_hash -> Text,
        token_id -> BigInt,
        csrf -> Text,
        created_at -> BigInt,
        expires_at -> BigInt,
    }
}

diesel::table! {
    check_results (package_id, channel, name) {
        package_id -> Text,
        channel -> Text,
        name -> Text,
        status -> Text,
        url -> Nullable<Text>,
        summary -> Nullable<Text>,
        reported_at -> BigInt,
        reported_by -> Text,
    }
}

diesel::allow_tables_to_appear_in_same_query!(
    packages,
    channels,
    revisions,
    revision_files,
    memberships,
    events,
    tokens,
    rejections,
    package_deps,
    policies,
    schedules,
    webhooks,
    webhook_attempts,
    ui_sessions,
    check_results,
);
