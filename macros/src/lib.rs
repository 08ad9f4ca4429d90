//! `#[derive(Record)]`: a record kind's struct, with one `#[field(...)]`
//! attribute per field, becomes everything else a field needs — its patch
//! type, how a patch applies it, how a body is read into it, its shape in
//! the OpenAPI document and how a view shows it. The attributes and the
//! runtime the generated code calls are described in
//! `clientele::core::fields`; this crate only writes the code.
//!
//! A proc-macro rather than a `macro_rules!` table because the struct
//! itself stays the declaration (serde's and the reader's view of a field
//! cannot drift apart), and because errors point at the attribute that is
//! wrong: a check whose value does not fit the field is reported at the
//! `check = …` expression.

use proc_macro::TokenStream;
use proc_macro2::{Span, TokenStream as Tokens};
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{
    Attribute, Data, DeriveInput, Expr, Fields, GenericArgument, Ident, LitStr, Path,
    PathArguments, Type, parse_macro_input,
};

#[proc_macro_derive(Record, attributes(field, record))]
pub fn derive_record(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    match expand(&input) {
        Ok(tokens) => tokens.into(),
        Err(error) => error.to_compile_error().into(),
    }
}

/// What the struct-level attributes say.
struct RecordOptions {
    patch: Ident,
    id_after: Option<Ident>,
    times_after: Option<Ident>,
    patch_needs_a_field: bool,
    camel_case: bool,
}

/// One declared field.
struct Field {
    ident: Ident,
    wire: String,
    ty: Type,
    /// `T` when the field is an `Option<T>`.
    option_of: Option<Type>,
    check: Option<Expr>,
    required: bool,
    default: Option<Expr>,
    nullable: bool,
    nullable_on_create: bool,
    merge: bool,
    apply: Option<Path>,
    read_only: bool,
    value: Option<Type>,
    example: Option<Expr>,
    doc: Option<String>,
    span: Span,
}

impl Field {
    /// Whether `null` is accepted for this field in the given mode.
    fn null_on_patch(&self) -> bool {
        self.option_of.is_some() || self.nullable
    }

    /// Whether the patch type can hold `null` (some mode accepts it).
    fn patch_holds_null(&self) -> bool {
        self.null_on_patch() || self.nullable_on_create
    }

    /// What a valid body value of this field becomes.
    fn value_type(&self) -> Type {
        if let Some(value) = &self.value {
            return value.clone();
        }
        self.option_of.clone().unwrap_or_else(|| self.ty.clone())
    }
}

fn expand(input: &DeriveInput) -> syn::Result<Tokens> {
    let name = &input.ident;
    let options = record_options(input)?;
    let Data::Struct(data) = &input.data else {
        return Err(syn::Error::new(
            input.span(),
            "#[derive(Record)] declares a struct's fields",
        ));
    };
    let Fields::Named(named) = &data.fields else {
        return Err(syn::Error::new(
            input.span(),
            "#[derive(Record)] needs named fields",
        ));
    };
    let fields = named
        .named
        .iter()
        .map(|field| read_field(field, options.camel_case))
        .collect::<syn::Result<Vec<Field>>>()?;
    for slot in [&options.id_after, &options.times_after]
        .into_iter()
        .flatten()
    {
        if !fields.iter().any(|field| field.ident == *slot) {
            return Err(syn::Error::new(slot.span(), "no field of this name"));
        }
    }
    let writable: Vec<&Field> = fields.iter().filter(|field| !field.read_only).collect();

    let patch = patch_struct(name, &options, &writable);
    let apply = apply_impl(name, &options, &writable);
    let build = build_fn(&fields);
    let read = read_fn(name, &options, &writable);
    let request_shape = request_shape_fn(&options, &writable);
    let view = view_fns(&options, &fields);
    let patch_name = &options.patch;
    let wire_names = writable.iter().map(|field| &field.wire);

    Ok(quote! {
        #patch
        #apply

        impl #name {
            #build
            #read
        }

        impl crate::core::fields::Declared for #name {
            type Patch = #patch_name;

            const WRITABLE: &'static [&'static str] = &[#(#wire_names),*];

            fn read_patch<D: crate::core::fields::Dialect>(
                body: &serde_json::Value,
            ) -> Result<Self::Patch, crate::core::error::DomainError> {
                Self::read_body::<D>(body, crate::core::fields::Mode::Patch)
            }

            fn read_new<D: crate::core::fields::Dialect>(
                body: &serde_json::Value,
            ) -> Result<Self, crate::core::error::DomainError> {
                let patch = Self::read_body::<D>(body, crate::core::fields::Mode::Create)?;
                Self::build(patch)
            }

            fn apply_patch(
                patch: Self::Patch,
                target: &mut Self,
            ) -> Result<(), crate::core::error::DomainError> {
                patch.apply(target)
            }

            #request_shape
            #view
        }
    })
}

fn record_options(input: &DeriveInput) -> syn::Result<RecordOptions> {
    let mut options = RecordOptions {
        patch: format_ident!("{}Patch", input.ident),
        id_after: None,
        times_after: None,
        patch_needs_a_field: false,
        camel_case: false,
    };
    for attr in &input.attrs {
        if attr.path().is_ident("record") {
            attr.parse_nested_meta(|meta| {
                if meta.path.is_ident("patch") {
                    options.patch = meta.value()?.parse()?;
                } else if meta.path.is_ident("id_after") {
                    options.id_after = Some(meta.value()?.parse()?);
                } else if meta.path.is_ident("times_after") {
                    options.times_after = Some(meta.value()?.parse()?);
                } else if meta.path.is_ident("patch_needs_a_field") {
                    options.patch_needs_a_field = true;
                } else {
                    return Err(
                        meta.error("expected patch, id_after, times_after or patch_needs_a_field")
                    );
                }
                Ok(())
            })?;
        } else if attr.path().is_ident("serde") {
            // serde names the fields on the wire and in storage; reading
            // its own attribute keeps the two from disagreeing.
            attr.parse_nested_meta(|meta| {
                if meta.path.is_ident("rename_all") {
                    let rule: LitStr = meta.value()?.parse()?;
                    match rule.value().as_str() {
                        "camelCase" => options.camel_case = true,
                        "snake_case" => {}
                        _ => return Err(meta.error("Record supports camelCase or snake_case")),
                    }
                } else if meta.input.peek(syn::Token![=]) {
                    let _: Expr = meta.value()?.parse()?;
                }
                Ok(())
            })?;
        }
    }
    Ok(options)
}

fn read_field(field: &syn::Field, camel_case: bool) -> syn::Result<Field> {
    let ident = field
        .ident
        .clone()
        .ok_or_else(|| syn::Error::new(field.span(), "a named field"))?;
    let mut declared = Field {
        wire: if camel_case {
            camel(&ident.to_string())
        } else {
            ident.to_string()
        },
        ident,
        ty: field.ty.clone(),
        option_of: option_inner(&field.ty),
        check: None,
        required: false,
        default: None,
        nullable: false,
        nullable_on_create: false,
        merge: false,
        apply: None,
        read_only: false,
        value: None,
        example: None,
        doc: doc_of(&field.attrs),
        span: field.span(),
    };
    let mut seen = false;
    for attr in &field.attrs {
        if attr.path().is_ident("serde") {
            attr.parse_nested_meta(|meta| {
                if meta.path.is_ident("rename") {
                    let wire: LitStr = meta.value()?.parse()?;
                    declared.wire = wire.value();
                } else if meta.input.peek(syn::Token![=]) {
                    let _: Expr = meta.value()?.parse()?;
                }
                Ok(())
            })?;
        }
        if !attr.path().is_ident("field") {
            continue;
        }
        seen = true;
        attr.parse_nested_meta(|meta| {
            let key = meta
                .path
                .get_ident()
                .map(ToString::to_string)
                .unwrap_or_default();
            match key.as_str() {
                "check" => declared.check = Some(meta.value()?.parse()?),
                "required" => declared.required = true,
                "default" => declared.default = Some(meta.value()?.parse()?),
                "nullable" => declared.nullable = true,
                "nullable_on_create" => declared.nullable_on_create = true,
                "merge" => declared.merge = true,
                "apply" => declared.apply = Some(meta.value()?.parse()?),
                "read_only" => declared.read_only = true,
                "value" => declared.value = Some(meta.value()?.parse()?),
                "example" => declared.example = Some(meta.value()?.parse()?),
                _ => {
                    return Err(meta.error(
                        "expected check, required, default, nullable, nullable_on_create, merge, apply, read_only, value or example",
                    ));
                }
            }
            Ok(())
        })?;
    }
    let at = declared.span;
    if !seen {
        return Err(syn::Error::new(
            at,
            "every field of a record is declared with #[field(...)]",
        ));
    }
    if declared.read_only {
        if declared.check.is_some() || declared.required || declared.apply.is_some() {
            return Err(syn::Error::new(
                at,
                "a read_only field is set by the server: no check, required or apply",
            ));
        }
    } else if declared.check.is_none() {
        return Err(syn::Error::new(
            at,
            "a writable field needs check = <a Check>",
        ));
    }
    if declared.required && (declared.patch_holds_null() || declared.default.is_some()) {
        return Err(syn::Error::new(
            at,
            "a required field can be neither nullable nor defaulted",
        ));
    }
    if declared.required && declared.apply.is_some() {
        return Err(syn::Error::new(
            at,
            "a required field is set directly, not through apply",
        ));
    }
    Ok(declared)
}

/// `user_ids` → `userIds`.
fn camel(snake: &str) -> String {
    let mut out = String::with_capacity(snake.len());
    let mut upper = false;
    for character in snake.chars() {
        if character == '_' {
            upper = true;
        } else if upper {
            out.extend(character.to_uppercase());
            upper = false;
        } else {
            out.push(character);
        }
    }
    out
}

/// The `T` of `Option<T>`.
fn option_inner(ty: &Type) -> Option<Type> {
    let Type::Path(path) = ty else { return None };
    let last = path.path.segments.last()?;
    if last.ident != "Option" {
        return None;
    }
    let PathArguments::AngleBracketed(arguments) = &last.arguments else {
        return None;
    };
    match arguments.args.first()? {
        GenericArgument::Type(inner) => Some(inner.clone()),
        _ => None,
    }
}

/// The doc comment, its lines joined by spaces (a description is prose).
fn doc_of(attrs: &[Attribute]) -> Option<String> {
    let lines: Vec<String> = attrs
        .iter()
        .filter(|attr| attr.path().is_ident("doc"))
        .filter_map(|attr| match &attr.meta {
            syn::Meta::NameValue(pair) => match &pair.value {
                Expr::Lit(syn::ExprLit {
                    lit: syn::Lit::Str(text),
                    ..
                }) => Some(text.value().trim().to_owned()),
                _ => None,
            },
            _ => None,
        })
        .collect();
    let joined = lines
        .iter()
        .filter(|line| !line.is_empty())
        .cloned()
        .collect::<Vec<_>>()
        .join(" ");
    (!joined.is_empty()).then_some(joined)
}

fn patch_struct(name: &Ident, options: &RecordOptions, writable: &[&Field]) -> Tokens {
    let patch = &options.patch;
    let doc = format!(
        "A partial update of a [`{name}`]: absent fields stay as they are. Generated from the declaration by `#[derive(Record)]`."
    );
    let fields = writable.iter().map(|field| {
        let ident = &field.ident;
        let value = field.value_type();
        let ty = if field.patch_holds_null() {
            quote!(crate::core::patch::Patch<#value>)
        } else {
            quote!(Option<#value>)
        };
        let field_doc = format!("`{}`", field.wire);
        quote! {
            #[doc = #field_doc]
            pub #ident: #ty
        }
    });
    quote! {
        #[doc = #doc]
        #[derive(Debug, Clone, Default, PartialEq)]
        pub struct #patch {
            #(#fields,)*
        }
    }
}

fn apply_impl(name: &Ident, options: &RecordOptions, writable: &[&Field]) -> Tokens {
    let patch = &options.patch;
    let steps = writable.iter().map(|field| {
        let ident = &field.ident;
        let span = field.span;
        if let Some(apply) = &field.apply {
            return quote_spanned!(span=> #apply(target, self.#ident););
        }
        if field.merge {
            return if field.patch_holds_null() {
                quote_spanned!(span=> crate::core::fields::apply_merge(self.#ident, &mut target.#ident);)
            } else {
                quote_spanned!(span=>
                    if let Some(changes) = self.#ident {
                        crate::core::patch::merge_map(&mut target.#ident, changes);
                    }
                )
            };
        }
        if field.option_of.is_some() {
            quote_spanned!(span=> self.#ident.apply_to_option(&mut target.#ident);)
        } else if field.patch_holds_null() {
            quote_spanned!(span=> crate::core::fields::apply_or_default(self.#ident, &mut target.#ident);)
        } else {
            quote_spanned!(span=>
                if let Some(value) = self.#ident {
                    target.#ident = value;
                }
            )
        }
    });
    quote! {
        impl #patch {
            /// Applies the named fields, then the kind's whole-record rules
            /// ([`crate::core::fields::Rules::after_apply`]). On error the
            /// record may be half-changed; the caller discards it (the
            /// store writes nothing when a change fails).
            pub fn apply(self, target: &mut #name) -> Result<(), crate::core::error::DomainError> {
                self.apply_fields(target);
                <#name as crate::core::fields::Rules>::after_apply(target, crate::core::fields::Mode::Patch)
                    .map_err(crate::core::error::DomainError::Invalid)
            }

            fn apply_fields(self, target: &mut #name) {
                #(#steps)*
            }
        }
    }
}

fn build_fn(fields: &[Field]) -> Tokens {
    let initial = fields.iter().map(|field| {
        let ident = &field.ident;
        let key = &field.wire;
        if field.required {
            quote! {
                #ident: patch.#ident.take().ok_or_else(|| crate::core::fields::missing_value(#key))?
            }
        } else if let Some(default) = &field.default {
            quote!(#ident: #default)
        } else {
            quote!(#ident: Default::default())
        }
    });
    quote! {
        /// A new record from a create body: required fields from the body,
        /// the others at their defaults, then the rest of the body applied.
        fn build(mut patch: <Self as crate::core::fields::Declared>::Patch) -> Result<Self, crate::core::error::DomainError> {
            let mut record = Self {
                #(#initial,)*
            };
            patch.apply_fields(&mut record);
            <Self as crate::core::fields::Rules>::after_apply(&mut record, crate::core::fields::Mode::Create)
                .map_err(crate::core::error::DomainError::Invalid)?;
            Ok(record)
        }
    }
}

fn read_fn(name: &Ident, options: &RecordOptions, writable: &[&Field]) -> Tokens {
    let patch = &options.patch;
    let needs_a_field = options.patch_needs_a_field;
    let reads = writable.iter().map(|field| {
        let ident = &field.ident;
        let key = &field.wire;
        let required = field.required;
        let check = field.check.as_ref().map(|check| {
            let span = check.span();
            quote_spanned!(span=> &(#check))
        });
        let span = field.span;
        let value = quote_spanned!(span=>
            reader.value_field(&fields, #key, #check, #required && creating)
        );
        let nullable = quote_spanned!(span=>
            reader.nullable_field(&fields, #key, #check, #required && creating)
        );
        let read = if field.null_on_patch() {
            nullable
        } else if field.nullable_on_create {
            quote! {
                if creating {
                    #nullable
                } else {
                    match #value {
                        Some(value) => crate::core::patch::Patch::Value(value),
                        None => crate::core::patch::Patch::Absent,
                    }
                }
            }
        } else {
            value
        };
        quote!(#ident: #read)
    });
    quote! {
        /// Reads a create or PATCH body, reporting every invalid field
        /// with its path in surface `D`'s words.
        fn read_body<D: crate::core::fields::Dialect>(
            body: &serde_json::Value,
            mode: crate::core::fields::Mode,
        ) -> Result<#patch, crate::core::error::DomainError> {
            let creating = mode == crate::core::fields::Mode::Create;
            let root = crate::core::error::FieldPath::root();
            let mut reader = crate::core::input::Reader::speaking(D::WORDS);
            let read_only = <#name as crate::core::fields::Declared>::read_only_keys::<D>();
            let Some(fields) = reader.record_body(
                body,
                &root,
                <#name as crate::core::fields::Declared>::WRITABLE,
                &read_only,
                #needs_a_field && !creating,
            ) else {
                return Err(reader.into_error());
            };
            let mut patch = #patch {
                #(#reads,)*
            };
            <#name as crate::core::fields::Rules>::after_read(mode, &fields, &mut patch, &mut reader);
            reader.finish(patch)
        }
    }
}

/// A field's shape with its doc comment and example.
fn described(shape: Tokens, field: &Field) -> Tokens {
    let with_doc = match &field.doc {
        Some(doc) => quote!(#shape.describe(#doc)),
        None => shape,
    };
    match &field.example {
        Some(example) => quote!(#with_doc.example(#example)),
        None => with_doc,
    }
}

fn request_shape_fn(options: &RecordOptions, writable: &[&Field]) -> Tokens {
    let needs_a_field = options.patch_needs_a_field;
    let properties = writable.iter().map(|field| {
        let key = &field.wire;
        let check = field.check.as_ref();
        let null_on_patch = field.null_on_patch();
        let null_on_create = field.null_on_patch() || field.nullable_on_create;
        let required = field.required;
        let shape = described(
            quote! {
                {
                    let shape = crate::core::fields::Check::shape(&(#check));
                    let nullable = if creating { #null_on_create } else { #null_on_patch };
                    if nullable { shape.or_null() } else { shape }
                }
            },
            field,
        );
        quote! {
            shape = shape.property(#key, #shape, #required && creating);
        }
    });
    quote! {
        fn request_shape(mode: crate::core::fields::Mode) -> crate::core::shape::Shape {
            let creating = mode == crate::core::fields::Mode::Create;
            let mut shape = crate::core::shape::closed_object();
            #(#properties)*
            if #needs_a_field && !creating {
                shape = shape.min_properties(1);
            }
            <Self as crate::core::fields::Rules>::request_shape_extra(mode, shape)
        }
    }
}

fn view_fns(options: &RecordOptions, fields: &[Field]) -> Tokens {
    let id_first = options.id_after.is_none();
    let times_last = options.times_after.is_none();
    let is_slot = |slot: &Option<Ident>, field: &Field| slot.as_ref() == Some(&field.ident);

    let mut writes = Vec::new();
    let mut shapes = Vec::new();
    let mut keys = Vec::new();
    if id_first {
        writes.push(quote!(crate::core::fields::write_id::<D, M>(&record.id, map)?;));
        shapes.push(quote!(shape = shape.property(D::ID_KEY, D::id_shape(), true);));
        keys.push(quote!(keys.push(D::ID_KEY);));
    }
    for field in fields {
        let ident = &field.ident;
        let key = &field.wire;
        let ty = &field.ty;
        writes.push(quote! {
            map.serialize_entry(#key, &crate::core::fields::ViewOf::<D, #ty>::of(&record.data.#ident))?;
        });
        let shape = if field.read_only {
            quote!(<#ty as crate::core::fields::ViewValue>::view_shape::<D>())
        } else {
            let check = field.check.as_ref();
            let nullable = field.option_of.is_some();
            quote! {
                {
                    let shape = crate::core::fields::Check::view_shape(&(#check));
                    if #nullable { shape.or_null() } else { shape }
                }
            }
        };
        let shape = described(shape, field);
        // A view writes every field, `null` included, so every key is
        // required: generated clients then read an absent value as the
        // server's `null`, not as "not sent".
        shapes.push(quote!(shape = shape.property(#key, #shape, true);));
        if field.read_only {
            keys.push(quote!(keys.push(#key);));
        }
        if is_slot(&options.id_after, field) {
            writes.push(quote!(crate::core::fields::write_id::<D, M>(&record.id, map)?;));
            shapes.push(quote!(shape = shape.property(D::ID_KEY, D::id_shape(), true);));
            keys.push(quote!(keys.push(D::ID_KEY);));
        }
        if is_slot(&options.times_after, field) {
            writes.push(quote!(crate::core::fields::write_times::<D, M, Self>(record, map)?;));
            shapes.push(quote! {
                shape = shape.property(D::TIME_KEYS[0], D::time_shape(), true);
                shape = shape.property(D::TIME_KEYS[1], D::time_shape(), true);
            });
            keys.push(quote!(keys.extend(D::TIME_KEYS);));
        }
    }
    if times_last {
        writes.push(quote!(crate::core::fields::write_times::<D, M, Self>(record, map)?;));
        shapes.push(quote! {
            shape = shape.property(D::TIME_KEYS[0], D::time_shape(), true);
            shape = shape.property(D::TIME_KEYS[1], D::time_shape(), true);
        });
        keys.push(quote!(keys.extend(D::TIME_KEYS);));
    }
    quote! {
        fn view_shape<D: crate::core::fields::Dialect>() -> crate::core::shape::Shape {
            let mut shape = crate::core::shape::object();
            #(#shapes)*
            shape
        }

        fn read_only_keys<D: crate::core::fields::Dialect>() -> Vec<&'static str> {
            let mut keys = Vec::new();
            #(#keys)*
            keys
        }

        fn write_view<D: crate::core::fields::Dialect, M: serde::ser::SerializeMap>(
            record: &crate::core::records::Record<Self>,
            map: &mut M,
        ) -> Result<(), M::Error> {
            #(#writes)*
            Ok(())
        }
    }
}
