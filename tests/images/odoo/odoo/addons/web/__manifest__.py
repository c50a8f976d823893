{
    'name': 'Web',
    'version': '1.0',
    'depends': ['base'],
    'data': [],
    'installable': True,
    'auto_install': True,
}
